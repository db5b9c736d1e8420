import gzip
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from rodpo import data as D
from rodpo.amazon import (AmazonDumpWarning, ItemMeta, build_sequences, detect_version, k_core_mask, load_amazon,
                          read_datamap, read_meta, read_reviews)
from rodpo.data import DataFormatError, load_dataset


def write_lines(path, lines, gz=True):
    "One record per line, gzip-compressed like the published dumps (or plain)."
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f: f.write(text)
    else: Path(path).write_text(text, encoding="utf-8")
    return path


def review14(user, asin, t, **extra):
    return dict(reviewerID=user, asin=asin, reviewerName="n", helpful=[0, 1], reviewText="fine", overall=4.0,
                summary="s", unixReviewTime=t, reviewTime="01 2, 2014", **extra)


def review18(user, asin, t):
    return dict(overall=5.0, verified=True, reviewTime="09 1, 2015", reviewerID=user, asin=asin, reviewerName="n",
                reviewText="fine", summary="s", unixReviewTime=t, vote="2")


def review23(user, parent, t_ms, variant=None):
    return dict(rating=5.0, title="t", text="fine", images=[], asin=variant or parent, parent_asin=parent, user_id=user,
                timestamp=t_ms, helpful_vote=0, verified_purchase=True)


def full_grid(users, items, t0=1_400_000_000):
    "Every user reviews every item, one day apart, so any k-core up to min(len(users), len(items)) keeps everything."
    return [(u, a, t0 + 86400 * (j + k)) for j, u in enumerate(users) for k, a in enumerate(items)]


# --- the three dump formats: reading, text and images --------------------------------------------------------

def test_2014_json_reviews_and_python_literal_meta(tmp_path):
    reviews = write_lines(tmp_path / "reviews_Beauty_5.json.gz",
                          [json.dumps(review14(u, a, t)) for u, a, t in full_grid(["U1", "U2", "U3"], ["B1", "B2", "B3"])])
    meta_lines = [repr({"asin": "B1", "title": "Kiehl's  Ultra Facial Cream", "price": 21.0, "salesRank": {"Beauty": 10},
                        "imUrl": "http://ecx.images-amazon.com/images/I/41a.jpg",
                        "categories": [["Beauty", "Skin Care", "Face"], ["Beauty", "Makeup"]], "brand": "Kiehl's"}),
                  repr({"asin": "B2", "title": "Lip Balm", "imUrl": "http://ecx.images-amazon.com/images/I/41b.jpg",
                        "categories": [["Beauty"]]}),
                  repr({"asin": "B3", "categories": [["Beauty", "Tools & Accessories"]], "related": {"also_bought": ["B1"]}}),
                  repr({"asin": "B9", "title": "not reviewed", "categories": [["Beauty"]]})]
    assert meta_lines[0].startswith("{'asin': 'B1'")  # single-quoted Python literal, as in the 2014 dump
    meta = write_lines(tmp_path / "meta_Beauty.json.gz", meta_lines)
    ds = load_amazon(reviews, meta, k_core=3)
    assert ds.name == "reviews_Beauty_5"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 3, 9)
    assert ds.item_ids == ["B1", "B2", "B3"] and ds.user_ids == ["U1", "U2", "U3"]
    assert ds.item_text == ["Kiehl's Ultra Facial Cream. Beauty Skin Care Face Makeup. Kiehl's.", "Lip Balm. Beauty.",
                            "Beauty Tools & Accessories."]
    assert ds.item_images == ["http://ecx.images-amazon.com/images/I/41a.jpg", "http://ecx.images-amazon.com/images/I/41b.jpg", None]
    st = ds.ingest_stats
    assert st["reviews"]["version"] == "2014" and st["meta"]["version"] == "2014"
    assert st["meta"]["records"] == 3 and st["meta"]["other_items"] == 1 and st["meta"]["items_without_metadata"] == 0
    assert all(s.dtype == np.int64 for s in ds.sequences)


def test_2014_reviews_written_as_python_literals_are_accepted(tmp_path):
    rows = full_grid(["U1", "U2", "U3"], ["B1", "B2", "B3"])
    as_json = load_amazon(write_lines(tmp_path / "a.json.gz", [json.dumps(review14(*r)) for r in rows]), k_core=3)
    as_repr = load_amazon(write_lines(tmp_path / "b.json.gz", [repr(review14(*r)) for r in rows]), k_core=3)
    assert [s.tolist() for s in as_json.sequences] == [s.tolist() for s in as_repr.sequences]
    assert as_repr.ingest_stats["reviews"]["skipped"] == {}


def test_2018_strict_json(tmp_path):
    reviews = write_lines(tmp_path / "Industrial_and_Scientific_5.json.gz",
                          [json.dumps(review18(u, a, t)) for u, a, t in full_grid(["A1", "A2", "A3"], ["S1", "S2", "S3"])])
    meta = write_lines(tmp_path / "meta_Industrial_and_Scientific.json.gz", [
        json.dumps({"category": ["Industrial & Scientific", "Tapes, Adhesives &amp; Sealants"], "tech1": "", "description": ["d"],
                    "title": "Gorilla Glue,\n 8 ounce", "also_buy": [], "brand": "Gorilla", "rank": "1", "main_cat": "Tools",
                    "asin": "S1", "imageURL": ["https://images-na.ssl-images-amazon.com/images/I/a._SS40_.jpg"],
                    "imageURLHighRes": ["https://images-na.ssl-images-amazon.com/images/I/a.jpg"]}),
        json.dumps({"category": [], "title": "Tape...", "brand": "", "asin": "S2",
                    "imageURL": ["https://images-na.ssl-images-amazon.com/images/I/b._SS40_.jpg"], "imageURLHighRes": []}),
        json.dumps({"category": ["dup"], "title": "second record of S1", "asin": "S1", "imageURL": []}),
    ])
    with pytest.warns(AmazonDumpWarning, match="1 of 3 items have no metadata"):
        ds = load_amazon(reviews, meta, k_core=3)
    assert ds.ingest_stats["reviews"]["version"] == "2018" and ds.ingest_stats["meta"]["version"] == "2018"
    assert ds.item_text == ["Gorilla Glue, 8 ounce. Industrial & Scientific Tapes, Adhesives & Sealants. Gorilla.", "Tape.", None]
    assert ds.item_images == ["https://images-na.ssl-images-amazon.com/images/I/a.jpg",  # the high-resolution one
                              "https://images-na.ssl-images-amazon.com/images/I/b._SS40_.jpg", None]
    assert ds.ingest_stats["meta"]["duplicates"] == 1 and ds.ingest_stats["meta"]["items_without_metadata"] == 1


def test_2023_jsonl_parent_asin_and_milliseconds(tmp_path):
    t0 = 1_600_000_000_000
    lines = []
    for j, u in enumerate(["AG1", "AG2", "AG3"]):
        for k, p in enumerate(["P1", "P2", "P3"]):
            lines.append(json.dumps(review23(u, p, t0 + 1000 * (j + k), variant=f"{p}-v{j}")))  # each user buys a different variant
    lines.append(json.dumps(review23("AG1", "P1", t0 + 500, variant="P1-red")))  # 0.5 s later than AG1's P1: ms order counts
    reviews = write_lines(tmp_path / "All_Beauty.jsonl.gz", lines)
    meta = write_lines(tmp_path / "meta_All_Beauty.jsonl.gz", [
        json.dumps({"main_category": "All Beauty", "title": "Serum", "average_rating": 4.1, "features": [], "store": "Acme",
                    "categories": ["Beauty & Personal Care", "Skin Care"], "parent_asin": "P1", "details": {},
                    "images": [{"thumb": "https://m.media-amazon.com/images/I/x._SS40_.jpg", "large": "https://m.media-amazon.com/images/I/x.jpg",
                                "variant": "PT01", "hi_res": "https://m.media-amazon.com/images/I/x._SL1500_.jpg"},
                               {"thumb": "https://m.media-amazon.com/images/I/m._SS40_.jpg", "large": "https://m.media-amazon.com/images/I/m.jpg",
                                "variant": "MAIN", "hi_res": None}]}),
        json.dumps({"main_category": "All Beauty", "title": "Toner", "store": None, "categories": [], "parent_asin": "P2",
                    "images": [{"thumb": "t", "large": "l", "variant": "MAIN", "hi_res": "https://m.media-amazon.com/images/I/h.jpg"}]}),
        json.dumps({"main_category": "All Beauty", "title": "Mask", "store": "Acme", "categories": [], "parent_asin": "P3", "images": []}),
    ])
    ds = load_amazon(reviews, meta, k_core=3)
    assert ds.ingest_stats["reviews"]["version"] == "2023"
    assert ds.item_ids == ["P1", "P2", "P3"]  # products, not the variants bought
    assert ds.n_interactions == 10 and ds.sequences[0].tolist() == [1, 1, 2, 3]
    assert ds.item_text == ["Serum. All Beauty Beauty & Personal Care Skin Care. Acme.", "Toner. All Beauty.", "Mask. All Beauty. Acme."]
    assert ds.item_images == ["https://m.media-amazon.com/images/I/m.jpg",  # MAIN image, largest size it has
                              "https://m.media-amazon.com/images/I/h.jpg", None]


def test_plain_files_read_like_gzip(tmp_path):
    lines = [json.dumps(review18(u, a, t)) for u, a, t in full_grid(["A1", "A2", "A3"], ["S1", "S2", "S3"])]
    gz = load_amazon(write_lines(tmp_path / "x.json.gz", lines), k_core=3)
    plain = load_amazon(write_lines(tmp_path / "x.json", lines, gz=False), k_core=3)
    assert [s.tolist() for s in gz.sequences] == [s.tolist() for s in plain.sequences] and gz.item_ids == plain.item_ids


def test_version_detection_and_override(tmp_path):
    assert detect_version(review14("U", "B", 1)) == "2014"
    assert detect_version(review18("U", "B", 1)) == "2018"
    assert detect_version(review23("U", "P", 1)) == "2023"
    assert detect_version({"asin": "B", "title": "t", "categories": [["Beauty"]], "imUrl": "u"}) == "2014"
    assert detect_version({"asin": "B", "title": "t", "category": ["Beauty"], "imageURL": []}) == "2018"
    assert detect_version({"parent_asin": "P", "title": "t", "categories": [], "images": []}) == "2023"
    path = write_lines(tmp_path / "r.json.gz", [json.dumps(dict(reviewerID="U", asin="B", unixReviewTime=1))])
    assert read_reviews(path).version == "2018"  # no 2014-only field: read as 2018, the same fields
    assert read_reviews(path, version="2014").version == "2014"
    with pytest.warns(AmazonDumpWarning, match=r"missing user \(user_id\)"):
        with pytest.raises(DataFormatError, match="no usable review records"):
            read_reviews(path, version="2023")
    with pytest.raises(ValueError, match="expected one of 2014, 2018, 2023"):
        read_reviews(path, version="2020")


# --- k-core, order, duplicates --------------------------------------------------------------------------------

def test_k_core_cascade(tmp_path):
    # k=3: x has 2 reviews and goes; item D then has 2 (y, w) and goes; y is left with 2 and goes.
    events = [("x", "D"), ("x", "E"), ("y", "D"), ("y", "A"), ("y", "B"), ("w", "D"), ("w", "A"), ("w", "B"), ("w", "C"),
              ("u1", "A"), ("u1", "B"), ("u1", "C"), ("u2", "A"), ("u2", "B"), ("u2", "C")]
    path = write_lines(tmp_path / "reviews_Cascade.json.gz",
                       [json.dumps(review14(u, a, 1_400_000_000 + t)) for t, (u, a) in enumerate(events)])
    ds = load_amazon(path, k_core=3)
    assert ds.user_ids == ["w", "u1", "u2"] and ds.item_ids == ["A", "B", "C"]
    assert [s.tolist() for s in ds.sequences] == [[1, 2, 3]] * 3
    assert ds.ingest_stats["sequences"]["removed_by_k_core"] == 6  # x: 2, y: 3, w's D: 1
    # one round at a time: after round 1 (x, E) the core still holds y and D
    users = np.array([["x", "y", "w", "u1", "u2"].index(u) for u, _ in events])
    items = np.array([["A", "B", "C", "D", "E"].index(a) for _, a in events])
    assert k_core_mask(users, items, k=3).sum() == 9
    assert k_core_mask(users, items, k=2).all() == False and k_core_mask(users, items, k=1).all()
    with pytest.raises(DataFormatError, match="no user is left"):
        load_amazon(path, k_core=4)


def test_chronological_order_ties_and_duplicates(tmp_path):
    # file order P, Q, R, S at times 5, 3, 3, 1; (Q, 3) again; P again later
    rows = [("u", "P", 5), ("u", "Q", 3), ("u", "R", 3), ("u", "S", 1), ("u", "Q", 3), ("u", "P", 9),
            ("v", "S", 2), ("v", "R", 2), ("v", "Q", 2), ("v", "P", 2)]
    ds = load_amazon(write_lines(tmp_path / "r.json.gz", [json.dumps(review14(u, a, t)) for u, a, t in rows]), k_core=0)
    names = [[ds.item_ids[i - 1] for i in s] for s in ds.sequences]
    assert names == [["S", "Q", "R", "P", "P"], ["S", "R", "Q", "P"]]  # v: all tied, file order kept
    assert ds.ingest_stats["sequences"]["duplicates"] == 1
    assert ds.item_ids == ["S", "Q", "R", "P"]  # numbered in order of first appearance, user after user


# --- malformed lines -------------------------------------------------------------------------------------------

def malformed_reviews(tmp_path):
    good = [json.dumps(review14(u, a, t)) for u, a, t in full_grid(["U1", "U2", "U3"], ["B1", "B2", "B3"])]
    bad = ['{"reviewerID": "U9", "asin": "B1", "unixReviewTime": 14',  # cut mid-record
           json.dumps({"asin": "B1", "unixReviewTime": 1400000000}),  # no reviewer
           json.dumps({"reviewerID": "", "asin": "B1", "unixReviewTime": 1400000000}),  # empty reviewer
           json.dumps({"reviewerID": "U9", "unixReviewTime": 1400000000}),  # no item
           json.dumps({"reviewerID": "U9", "asin": "B1"}),  # no time
           json.dumps({"reviewerID": "U9", "asin": "B1", "unixReviewTime": "09 13, 2009"}),  # time not an integer
           "[1, 2, 3]",  # not a record
           ""]
    lines = good[:2] + bad + good[2:]
    return write_lines(tmp_path / "reviews_Broken.json.gz", lines)


def test_malformed_review_lines_are_counted_and_skipped(tmp_path):
    path = malformed_reviews(tmp_path)
    with pytest.warns(AmazonDumpWarning, match="skipped 8 malformed line"):
        ds = load_amazon(path, k_core=3)
    st = ds.ingest_stats["reviews"]
    assert st["skipped"] == {"unparsable line": 2, "missing user (reviewerID)": 2, "missing item (asin)": 1,
                             "missing or non-integer time (unixReviewTime)": 2, "blank line": 1}
    assert st["first_line"] == {"unparsable line": 3, "missing user (reviewerID)": 4, "missing item (asin)": 6,
                                "missing or non-integer time (unixReviewTime)": 7, "blank line": 10}
    assert st["lines"] == 17 and st["records"] == 9 == ds.n_interactions
    assert st["records"] + sum(st["skipped"].values()) == st["lines"]  # every line accounted for


def test_strict_names_file_and_line(tmp_path):
    path = malformed_reviews(tmp_path)
    with pytest.raises(DataFormatError) as e:
        load_amazon(path, strict=True)
    assert e.value.line == 3 and e.value.path == path
    assert re.search(r"reviews_Broken\.json\.gz, line 3: unparsable line", str(e.value))
    only_missing_time = write_lines(tmp_path / "r.json.gz", [json.dumps(review14("U1", "B1", 1)), json.dumps({"reviewerID": "U", "asin": "B"})])
    with pytest.raises(DataFormatError, match=r"r\.json\.gz, line 2: missing or non-integer time \(unixReviewTime\)"):
        read_reviews(only_missing_time, strict=True)


@pytest.mark.parametrize("gz", [True, False])
def test_blank_lines_at_the_end_of_a_dump_are_ignored(tmp_path, gz):
    lines = [json.dumps(review14(u, a, t)) for u, a, t in full_grid(["U1", "U2", "U3"], ["B1", "B2", "B3"])]
    path = write_lines(tmp_path / ("r.json.gz" if gz else "r.json"), lines + ["", "  ", ""], gz=gz)
    inter = read_reviews(path, strict=True)  # no warning, no error
    assert len(inter) == 9 and inter.stats["skipped"] == {} and inter.stats["lines"] == 9
    meta = write_lines(tmp_path / "meta.json", [repr({"asin": "B1", "title": "ok"}), ""], gz=False)
    assert list(read_meta(meta, strict=True)[0]) == ["B1"]
    inside = write_lines(tmp_path / "r2.json", lines[:4] + ["", ""] + lines[4:] + [""], gz=False)
    with pytest.warns(AmazonDumpWarning, match="skipped 2 malformed"):
        inter = read_reviews(inside)
    assert inter.stats["skipped"] == {"blank line": 2} and inter.stats["first_line"] == {"blank line": 5} and inter.stats["lines"] == 11
    with pytest.raises(DataFormatError, match=r"r2\.json, line 5: blank line: expected one record per line; blank lines are allowed only at the end"):
        read_reviews(inside, strict=True)


def test_malformed_meta_lines(tmp_path):
    path = write_lines(tmp_path / "meta_X.json.gz", [repr({"asin": "B1", "title": "ok", "categories": [["X"]]}),
                                                      repr({"title": "no asin", "categories": [["X"]]}),
                                                      "{'asin': 'B2', 'title': 'cut"])
    with pytest.warns(AmazonDumpWarning, match="skipped 2 malformed"):
        meta, st = read_meta(path)
    assert list(meta) == ["B1"] and meta["B1"] == ItemMeta("ok", ["X"], "", None)
    assert st["skipped"] == {"missing item (asin)": 1, "unparsable line": 1} and st["first_line"] == {"missing item (asin)": 2, "unparsable line": 3}
    with pytest.raises(DataFormatError, match=r"meta_X\.json\.gz, line 2: missing item \(asin\)"):
        read_meta(path, strict=True)


def test_truncated_gzip_keeps_the_lines_before_the_break(tmp_path):
    lines = [json.dumps(review18(u, a, t)) for u, a, t in full_grid([f"A{i}" for i in range(200)], ["S1", "S2", "S3"])]
    path = write_lines(tmp_path / "r.json.gz", lines)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.warns(AmazonDumpWarning, match="truncated or corrupt gzip stream"):
        inter = read_reviews(path)
    assert 0 < len(inter) < len(lines) and inter.stats["skipped"] == {"truncated or corrupt gzip stream": 1}
    with pytest.raises(DataFormatError, match="truncated or corrupt gzip stream"):
        read_reviews(path, strict=True)


# --- the S3-Rec item ids -----------------------------------------------------------------------------------------

def test_restrict_to_uses_the_datamap_ids(tmp_path, shared_data):
    datamap = shared_data / "s3rec/datamaps/beauty_datamaps.json"
    dm = json.loads(datamap.read_text())
    picked = ["1", "7", "500", "12101"]  # datamap ids whose ASINs the fixture reviews
    asins = [dm["id2item"][i] for i in picked]
    reviewers = [dm["id2user"][i] for i in ("3", "1", "2")]
    rows = full_grid(reviewers, asins + ["NOT_IN_BEAUTY"])
    reviews = write_lines(tmp_path / "reviews_Beauty_5.json.gz", [json.dumps(review14(*r)) for r in rows])
    silent_item = dm["id2item"]["42"]  # in the map, never reviewed here: keeps id 42 and its metadata
    meta = write_lines(tmp_path / "meta_Beauty.json.gz", [repr({"asin": a, "title": f"T{a}", "categories": [["Beauty"]]})
                                                          for a in asins + [silent_item]])
    with pytest.warns(AmazonDumpWarning, match="have no metadata"):
        ds = load_amazon(reviews, meta, k_core=3, restrict_to=datamap)
    assert ds.n_items == len(dm["item2id"]) == 12101
    assert ds.item_ids == [dm["id2item"][str(i)] for i in range(1, 12102)]
    assert sorted(set(np.concatenate(ds.sequences).tolist())) == [int(dm["item2id"][a]) for a in asins] == [1, 7, 500, 12101]
    assert ds.sequences[0].tolist() == [1, 7, 500, 12101]  # the fixture's item order, under the datamap's ids
    assert ds.user_ids == [dm["id2user"][i] for i in ("1", "2", "3")]  # users in the datamap's order
    assert ds.item_text[41] == f"T{silent_item}. Beauty." and ds.item_text[2] is None
    assert ds.ingest_stats["sequences"]["outside_map"] == 3
    beauty = load_dataset("beauty", shared_data)
    for a in asins: assert beauty.item_ids[int(dm["item2id"][a]) - 1] == a  # same item i as s3rec/Beauty.txt


def test_beauty_round_trip_through_a_2014_dump(tmp_path, shared_data):
    "A dump written from s3rec/Beauty.txt (datamap reviewers and ASINs, shuffled lines) loads back to the same sequences and ids."
    beauty = load_dataset("beauty", shared_data)
    datamap = shared_data / "s3rec/datamaps/beauty_datamaps.json"
    item2id, user2id = read_datamap(datamap)
    id2user = {v: k for k, v in user2id.items()}
    rows = [f'{{"reviewerID": "{id2user[int(u)]}", "asin": "{beauty.item_ids[i - 1]}", "helpful": [0, 0], "unixReviewTime": {1300000000 + 86400 * t}}}'
            for u, s in zip(beauty.user_ids, beauty.sequences) for t, i in enumerate(s.tolist())]
    random.Random(0).shuffle(rows)
    ds = load_amazon(write_lines(tmp_path / "reviews_Beauty_5.json.gz", rows), restrict_to=datamap)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (22363, 12101, 198502)
    assert all(np.array_equal(a, b) for a, b in zip(ds.sequences, beauty.sequences))
    assert ds.item_ids == beauty.item_ids
    assert ds.ingest_stats["sequences"]["removed_by_k_core"] == 0


def test_bad_datamap(tmp_path):
    p = tmp_path / "dm.json"
    p.write_text(json.dumps({"item2id": {"A": "1", "B": "3"}}))
    with pytest.raises(DataFormatError, match=r"not exactly 1\.\.2"):
        read_datamap(p)
    p.write_text(json.dumps({"id2item": {"1": "A"}}))
    with pytest.raises(DataFormatError, match="item2id"):
        read_datamap(p)


def test_data_does_not_import_amazon():
    src = Path(D.__file__).read_text()
    assert not re.search(r"^\s*(from|import)\s+(\.|rodpo\.)?amazon", src, re.M)


def test_sequences_carry_their_interaction_times_in_seconds(tmp_path):
    "Each user's timestamps sit beside its sequence, in seconds (the 2023 dumps' milliseconds converted), and give the intervals."
    grid = full_grid(["U1", "U2", "U3"], ["B1", "B2", "B3"])
    random.Random(0).shuffle(grid)  # file order is not time order
    ds = load_amazon(write_lines(tmp_path / "r14.json.gz", [json.dumps(review14(u, a, t)) for u, a, t in grid]), k_core=3)
    for u, seq, ts in zip(ds.user_ids, ds.sequences, ds.timestamps):
        mine = sorted((t, a) for v, a, t in grid if v == u)
        assert ts.tolist() == [float(t) for t, _ in mine] and [ds.item_ids[i - 1] for i in seq] == [a for _, a in mine]
    assert [iv.tolist() for iv in ds.intervals()] == [[0.0, 86400.0, 86400.0]] * 3
    ms = load_amazon(write_lines(tmp_path / "r23.jsonl.gz", [json.dumps(review23(u, a, 1000 * t)) for u, a, t in grid]), k_core=3)
    assert [t.tolist() for t in ms.timestamps] == [t.tolist() for t in ds.timestamps]
