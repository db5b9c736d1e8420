"""Hostile inputs: malformed, truncated or corrupted data files must end in one of rodpo's documented data errors
(naming the file, and the line where there is one) or load with exactly the statistics the file holds; never an
obscure exception (IndexError, KeyError, UnicodeDecodeError, JSON errors, ...) and never silently wrong numbers."""
import functools
import gzip
import http.server
import json
import re
import shutil
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from rodpo import data as D
from rodpo.amazon import read_reviews
from rodpo.data import ChecksumError, DataFormatError, DataNotFoundError, RodpoDataError, load_dataset

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DATA_ERRORS = (RodpoDataError, DataNotFoundError)


def expect_clean(call, path, n_lines=None):
    "Run `call`; a failure must be a documented data error naming `path` (and a line within the file). Returns the result or None."
    try:
        return call()
    except DATA_ERRORS as e:
        assert str(path) in str(e), f"the error does not name the file {path}: {e}"
        if isinstance(e, DataFormatError) and e.line is not None and n_lines is not None:
            assert 1 <= e.line <= n_lines + 1, f"line {e.line} outside a file of {n_lines} lines: {e}"
        return None


# ---------- S3-Rec sequence files

token = st.one_of(
    st.integers(1, 60).map(str),                       # good ids
    st.integers(-5, 0).map(str),                       # not positive
    st.integers(10**17, 10**22).map(str),              # beyond int64 (some)
    st.sampled_from(["x", "2.5", "+3", "1_0", "\u00b2", "\u0663", "0x1f", "", "nan", "1e3", "\u00a0"]),
    st.text(max_size=4),
)
line = st.one_of(
    st.lists(st.integers(1, 60), min_size=3, max_size=8).map(lambda s: " ".join(map(str, s))),
    st.lists(token, min_size=0, max_size=6).map(" ".join),
)
user = st.one_of(st.integers(0, 8).map(lambda i: f"u{i}"), st.text(max_size=3))


def _oracle_s3rec(text):
    "Statistics of a well-formed S3-Rec text (None when it is not one), computed independently of rodpo."
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip(): lines.pop()  # blank lines at the end of the file are allowed
    users, n_inter, items = set(), 0, set()
    for ln in lines:
        toks = ln.split()
        if len(toks) < 4 or toks[0] in users: return None
        if not all(re.fullmatch(r"[0-9]{1,18}", t) and int(t) > 0 for t in toks[1:]): return None
        users.add(toks[0]); n_inter += len(toks) - 1; items |= {int(t) for t in toks[1:]}
    return (len(users), len(items), n_inter) if users else None


@FAST
@given(body=st.lists(st.tuples(user, line), min_size=0, max_size=6),
       sep=st.sampled_from(["\n", "\r\n", "\r"]), junk=st.binary(max_size=4), junk_at=st.floats(0, 1), trailing=st.booleans())
def test_s3rec_hostile(tmp_path, body, sep, junk, junk_at, trailing):
    raw = sep.join(f"{u} {l}" for u, l in body).encode("utf-8") + (sep.encode() if trailing else b"")
    k = int(junk_at * len(raw))
    raw = raw[:k] + junk + raw[k:]
    p = tmp_path / "mine.txt"
    p.write_bytes(raw)
    n_lines = raw.count(b"\n") + raw.count(b"\r") + 1
    ds = expect_clean(lambda: load_dataset(p), p, n_lines)
    try: expected = _oracle_s3rec(raw.decode("utf-8"))
    except UnicodeDecodeError: expected = None
    if ds is None:
        assert expected is None, f"a well-formed file was refused: {raw!r}"
        return
    assert expected is not None, f"a malformed file was accepted: {raw!r}"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == expected
    ids = np.concatenate(ds.sequences)
    assert ids.min() == 1 and ids.max() == ds.n_items and len(np.unique(ids)) == ds.n_items


@FAST
@given(seqs=st.lists(st.lists(st.integers(1, 10**15), min_size=3, max_size=6), min_size=1, max_size=5),
       attrs=st.dictionaries(st.integers(1, 40), st.lists(st.integers(1, 50), max_size=3), max_size=6))
def test_s3rec_with_gaps_keeps_attributes_on_their_items(tmp_path, seqs, attrs):
    "Sparse or huge ids are renumbered without a table sized by the largest id, and attributes follow their items."
    seqs = [[s[0] % 40 + 1] + s[1:] for s in seqs]  # some attribute keys hit real items
    p = tmp_path / "mine.txt"
    p.write_text("".join(f"u{i} {' '.join(map(str, s))}\n" for i, s in enumerate(seqs)))
    present = {i for s in seqs for i in s}
    (tmp_path / "mine_item2attributes.json").write_text(json.dumps({str(k): v for k, v in attrs.items()}))
    ds = expect_clean(lambda: load_dataset(p), tmp_path / "mine_item2attributes.json")
    if ds is None:
        assert not set(attrs) <= present  # refused only for attributes of items that are not in the sequences
        return
    assert set(attrs) <= present
    orig = ds.item_ids if ds.item_ids is not None else [str(i) for i in range(1, ds.n_items + 1)]
    for new, o in enumerate(orig, 1):
        assert ds.attributes[new] == attrs.get(int(o), [])
    assert [list(map(int, (orig[j - 1] for j in s))) for s in ds.sequences] == seqs


json_value = st.recursive(st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats(allow_nan=True) | st.text(max_size=3),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=10)


@FAST
@given(doc=st.one_of(json_value, st.dictionaries(st.sampled_from(["1", "2", "3", "01", "0", "5", " 2", "x"]),
                                                  json_value | st.lists(st.integers(-1, 5), max_size=3), max_size=4)),
       raw=st.one_of(st.none(), st.binary(max_size=20)))
def test_item2attributes_hostile(tmp_path, doc, raw):
    p = tmp_path / "mine.txt"
    p.write_text("1 1 2 3\n2 2 3 4\n")
    a = tmp_path / "mine_item2attributes.json"
    a.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    ds = expect_clean(lambda: load_dataset(p), a)
    if ds is not None:  # accepted: exactly the file's lists, on items 1..4, attribute ids >= 1
        got = {i: v for i, v in enumerate(ds.attributes) if v}
        want = {int(k): v for k, v in json.loads(a.read_text()).items() if v}
        assert got == want and ds.n_attributes == max((max(v) for v in want.values()), default=0)


def test_deeply_nested_json_and_bad_datamap(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text("1 1 2 3\n2 2 3 4\n")
    (tmp_path / "mine_item2attributes.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataFormatError, match="nested too deeply|expected a JSON object"):
        load_dataset(p)
    dm = tmp_path / "dm.json"
    for content in ('{"id2item": [1]}', '[]', '{"item2id": {}}', '{"id2item": {"1": 5}}', "\xff"):
        dm.write_text(content, encoding="latin-1")
        with pytest.raises(DataFormatError, match=re.escape(str(dm))):
            D._load_s3rec(p, None, dm)


# ---------- atomic (UniSRec/RecBole) folders

def _write_atomic(folder, seqs):
    folder.mkdir(parents=True, exist_ok=True)
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    n = max(max(s) for s in seqs) + 1
    (folder / "X.test.inter").write_text(head + "".join(f"u{u}\t{' '.join(map(str, s[:-1]))}\t{s[-1]}\n" for u, s in enumerate(seqs)))
    (folder / "X.valid.inter").write_text(head + "".join(f"u{u}\t{' '.join(map(str, s[:-2]))}\t{s[-2]}\n" for u, s in enumerate(seqs)))
    (folder / "X.item2index").write_text("".join(f"A{i}\t{i}\n" for i in range(n)))
    (folder / "X.text").write_text("item_id:token\ttext:token_seq\n" + "".join(f"A{i}\ttext {i}\n" for i in range(n)))
    return n


atomic_seqs = st.lists(st.lists(st.integers(0, 12), min_size=3, max_size=7), min_size=1, max_size=5)


@FAST
@given(seqs=atomic_seqs)
def test_atomic_round_trip(tmp_path_factory, seqs):
    d = tmp_path_factory.mktemp("atomic")
    n = _write_atomic(d, seqs)
    ds = load_dataset(d)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (len(seqs), n, sum(map(len, seqs)))
    assert [s.tolist() for s in ds.sequences] == [[i + 1 for i in s] for s in seqs]


@FAST
@given(seqs=atomic_seqs, which=st.sampled_from(["test.inter", "valid.inter", "item2index", "text"]),
       how=st.sampled_from(["truncate", "insert", "drop_line", "dup_line", "tab_to_space", "replace"]),
       at=st.floats(0, 1), junk=st.binary(min_size=1, max_size=4))
def test_atomic_hostile(tmp_path_factory, seqs, which, how, at, junk):
    d = tmp_path_factory.mktemp("atomic")
    _write_atomic(d, seqs)
    f = d / f"X.{which}"
    raw = f.read_bytes()
    k = int(at * len(raw))
    lines = raw.split(b"\n")
    j = min(int(at * len(lines)), len(lines) - 1)
    raw2 = {"truncate": lambda: raw[:k],
            "insert": lambda: raw[:k] + junk + raw[k:],
            "drop_line": lambda: b"\n".join(lines[:j] + lines[j + 1:]),
            "dup_line": lambda: b"\n".join(lines[:j + 1] + lines[j:]),
            "tab_to_space": lambda: raw[:k] + raw[k:].replace(b"\t", b" ", 1),
            "replace": lambda: raw[:k] + junk + raw[k + len(junk):]}[how]()
    assume(raw2 != raw)
    f.write_bytes(raw2)
    ds = expect_clean(lambda: load_dataset(d), d)
    if ds is not None:  # accepted: what was loaded is consistent with itself and with the split files
        assert ds.n_users <= len(seqs) and all(len(s) >= 3 for s in ds.sequences)
        ids = np.concatenate(ds.sequences)
        assert ids.min() >= 1 and ids.max() <= ds.n_items
        assert len(ds.item_text) == ds.n_items
        if which == "valid.inter":  # the test file is intact: every user and every sequence is the original one
            assert [s.tolist() for s in ds.sequences] == [[i + 1 for i in s] for s in seqs]


def test_atomic_specific_holes(tmp_path):
    d = tmp_path / "a"
    _write_atomic(d, [[1, 2, 3], [2, 3, 4, 5]])
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (d / "X.test.inter").write_text(head)  # header only
    with pytest.raises(DataFormatError, match="X.test.inter: no rows after the header"):
        load_dataset(d)
    (d / "X.test.inter").write_text(head + "u0\t1 2\t3\n")  # a truncated test file: u1 is only in valid
    with pytest.raises(DataFormatError, match=r"X.valid.inter, line 3: 1 user\(s\), e.g. 'u1', have a validation row but no test row"):
        load_dataset(d)
    (d / "X.test.inter").write_text(head + "u0\t1 2\t3\nu0\t1 2\t3\n")
    with pytest.raises(DataFormatError, match="line 3: user 'u0' already has a row at line 2"):
        load_dataset(d)
    _write_atomic(d, [[1, 2, 3], [2, 3, 4, 5]])
    (d / "X.item2index").write_text("A0\t0\nA1\t\u00b2\n")
    with pytest.raises(DataFormatError, match="X.item2index, line 2: expected 'token<TAB>index'"):
        load_dataset(d)
    (d / "X.item2index").write_text("A0\t0\nA0\t1\n")
    with pytest.raises(DataFormatError, match="line 2: token 'A0' already listed at line 1"):
        load_dataset(d)
    (d / "X.test.inter").unlink()
    with pytest.raises(DataFormatError, match="found 0"):
        load_dataset(d)


# ---------- feature files

@FAST
@given(n_items=st.integers(1, 6), dim=st.one_of(st.none(), st.integers(1, 5)),
       kind=st.sampled_from(["ok", "float64", "float16", "npy", "nan", "inf", "short", "long", "empty"]))
def test_feature_files_hostile(tmp_path, n_items, dim, kind):
    d = dim or 3
    arr = np.random.default_rng(n_items).standard_normal((n_items, d)).astype("<f4")
    if kind == "nan": arr[-1, 0] = np.nan
    if kind == "inf": arr[0, -1] = -np.inf
    p = tmp_path / "x.feat"
    raw = {"float64": arr.astype("<f8").tobytes(), "float16": arr.astype("<f2").tobytes(), "short": arr.tobytes()[:-4],
           "long": arr.tobytes() + b"\0" * 4, "empty": b""}.get(kind, arr.tobytes())
    if kind == "npy":
        with open(p, "wb") as fh: np.save(fh, arr)
    else:
        p.write_bytes(raw)
    out = expect_clean(lambda: D.read_features(p, n_items, dim), p)
    if out is None:
        assert kind != "ok" or dim is None  # a good file given its dim always loads
        return
    # accepted: exactly the stored float32 rows under a zero padding row (a float64 file only when dim was inferred,
    # and then with twice the dim: the size cannot tell it apart; its rows hold the bytes as written)
    assert out.dtype == np.float32 and out.shape[0] == n_items + 1 and not out[0].any() and np.isfinite(out).all()
    assert out[1:].tobytes() == p.read_bytes()
    assert kind in ("ok", "float64", "float16", "long", "short") and (dim is None or kind == "ok")


@pytest.mark.parametrize("n_items,dim,msg", [(0, None, "n_items=0"), (3, 0, "dim=0"), (3, 2.0, "dim=2.0")])
def test_feature_arguments(tmp_path, n_items, dim, msg):
    p = tmp_path / "x.feat"
    p.write_bytes(b"\0" * 24)
    with pytest.raises(DataFormatError, match=msg):
        D.read_features(p, n_items, dim)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        D.read_features(tmp_path / "absent.feat", 3)


# ---------- downloads

class _Hostile(http.server.BaseHTTPRequestHandler):
    "Serves one file with a configurable fault: corrupt bytes, short bodies, wrong status lines, 404s."
    mode, body, good = "ok", b"", b""

    def log_message(self, *a): pass

    def do_GET(self):
        m, b = type(self).mode, type(self).body
        if m == "garbage": self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n"); return
        if m == "404": self.send_error(404); return
        if m == "500": self.send_error(500); return
        self.send_response(200)
        self.send_header("Content-Length", str(len(type(self).good if m == "short_body" else b)))
        self.end_headers()
        self.wfile.write(b)  # with short_body: the connection closes before the announced length


@pytest.fixture(scope="module")
def hostile_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


REL = "s3rec/Beauty_item2attributes.json"


@FAST
@given(mode=st.sampled_from(["truncate", "flip", "append", "short_body", "empty", "garbage", "404", "500"]),
       at=st.floats(0, 1), junk=st.integers(1, 255))
def test_download_faults(shared_data, hostile_server, tmp_path, monkeypatch, mode, at, junk):
    good = (shared_data / REL).read_bytes()
    k = min(int(at * len(good)), len(good) - 1)
    body = {"truncate": good[:k], "short_body": good[:k], "flip": good[:k] + bytes([good[k] ^ junk]) + good[k + 1:],
            "append": good + b"\n", "empty": b""}.get(mode, good)
    _Hostile.mode, _Hostile.body, _Hostile.good = mode, body, good
    cache = tmp_path / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    monkeypatch.delenv("RODPO_DATA", raising=False)
    monkeypatch.setenv("RODPO_CACHE", str(cache))
    monkeypatch.setenv("RODPO_MIRROR", hostile_server)
    with pytest.raises((ChecksumError, DataNotFoundError)) as e:
        D.fetch(REL)
    assert REL in str(e.value)
    if mode in ("garbage", "404", "500"): assert isinstance(e.value, DataNotFoundError)
    else: assert isinstance(e.value, ChecksumError) and "does not match" in str(e.value)
    assert not (cache / REL).exists() and not list((cache / "s3rec").glob(".*"))  # nothing kept, no temporary file


def test_bad_mirror_url(isolated, monkeypatch):
    monkeypatch.setenv("RODPO_MIRROR", "notaurl")
    with pytest.raises(DataNotFoundError, match="s3rec/Toys_and_Games.txt not found and its download failed"):
        D.fetch("s3rec/Toys_and_Games.txt")


def test_truncated_local_copy_of_a_benchmark(shared_data, isolated):
    "A copy that still parses but is cut (here: its last user dropped) is refused by name, and loads by path."
    root = isolated / "root"
    for rel in D.DATASETS["toys"].files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / rel, root / rel)
    f = root / "s3rec/Toys_and_Games.txt"
    f.write_bytes(b"\n".join(f.read_bytes().split(b"\n")[:-2]) + b"\n")
    with pytest.raises(ChecksumError, match="Toys_and_Games.txt: sha256 .* truncated or modified"):
        load_dataset("toys", data_dir=root)
    assert load_dataset(f).n_users == 19411


def test_bad_names(isolated):
    for name in ("x" * 5000, "a\0b", ""):
        with pytest.raises(RodpoDataError):
            load_dataset(name)


# ---------- raw Amazon dumps (rodpo.amazon)

record = st.fixed_dictionaries({}, optional={
    "reviewerID": st.one_of(st.text(max_size=3), st.integers(), st.none()),
    "asin": st.one_of(st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2)),
    "unixReviewTime": st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                                st.sampled_from(["12", "\u00b2", "\u0663", " 7 ", "1e3", ""]), st.none())})


@FAST
@given(recs=st.lists(st.one_of(record.map(json.dumps), st.text(max_size=10)), max_size=6),
       gz=st.booleans(), cut=st.one_of(st.none(), st.integers(1, 30)))
def test_amazon_reviews_hostile(tmp_path, recs, gz, cut):
    raw = "\n".join(recs).encode()
    if gz: raw = gzip.compress(raw)
    if cut is not None: raw = raw[:-cut] if cut < len(raw) else raw[:1]
    p = tmp_path / "reviews.json.gz"
    p.write_bytes(raw)
    for strict in (True, False):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inter = expect_clean(lambda: read_reviews(p, version="2014", strict=strict), p)
        if inter is not None:
            assert len(inter) == inter.stats["records"] >= 1 and len(inter.user) == len(inter.item) == len(inter.time)


# ---------- the feature cache (rodpo.features)

@FAST
@given(kind=st.sampled_from(["empty", "cut", "nan", "float64", "1d", "rows", "pickle", "bytes"]), junk=st.binary(max_size=64))
def test_damaged_feature_cache_is_recomputed(tmp_path, monkeypatch, kind, junk):
    import hashlib
    import io
    import torch
    from rodpo.features import text_features

    class Enc(torch.nn.Module):
        def __init__(self):
            super().__init__(); self.calls = 0; self.register_buffer("w", torch.ones(1))
        def encode(self, texts):
            self.calls += len(texts)
            return np.stack([np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).normal(size=4) for t in texts])

    cache = tmp_path / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    monkeypatch.setenv("RODPO_CACHE", str(cache))
    texts, enc = ["pen", "ink", "paper"], Enc()
    good = text_features(texts, enc, progress=False)
    (path,) = sorted((cache / "features").rglob("*.npy"))
    buf = io.BytesIO()
    if kind == "nan": bad = good.copy(); bad[1, 0] = np.nan; np.save(buf, bad)
    elif kind == "float64": np.save(buf, good.astype(np.float64))
    elif kind == "1d": np.save(buf, good.ravel())
    elif kind == "rows": np.save(buf, good[:-1])
    elif kind == "pickle": np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    raw = {"empty": b"", "cut": path.read_bytes()[:-5], "bytes": junk}.get(kind, buf.getvalue())
    path.write_bytes(raw)
    again = text_features(texts, enc, progress=False)
    np.testing.assert_array_equal(again, good)
    assert enc.calls == 6  # recomputed, not read from the damaged file
    np.testing.assert_array_equal(np.load(path), good)  # and the file replaced
