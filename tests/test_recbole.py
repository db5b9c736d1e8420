"RecBole atomic export: the files hold exactly rodpo's leave-one-out split."
import numpy as np
import pytest
import torch

from rodpo.data import SeqDataset, eval_set, load_dataset, read_atomic, training_windows
from rodpo.recbole import SPLITS, recbole_config, recbole_rows, to_recbole


def read_split(path):
    "Rows of a pre-split RecBole file, parsed independently: (user, history item ids, target id), ids back to 1-based."
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    out = []
    for line in lines[1:]:
        u, h, t = line.split("\t")
        out.append((u, [int(x) + 1 for x in h.split()], int(t) + 1))
    return out


def read_timestamped(path):
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["user_id:token", "item_id:token", "timestamp:float"]
    seqs = {}
    for line in lines[1:]:
        u, i, t = line.split("\t")
        seqs.setdefault(u, []).append((float(t), int(i) + 1))
    return {u: [i for _, i in sorted(v)] for u, v in seqs.items()}


def check(ds, folder, name, max_len):
    to_recbole(ds, folder, name, max_len)
    users = ds.user_ids
    # every interaction, in time order
    by_time = read_timestamped(folder / f"{name}.inter")
    assert [by_time[u] for u in users] == [s.tolist() for s in ds.sequences]
    # validation and test rows are rodpo's evaluation inputs and targets
    for split in ("valid", "test"):
        rows, es = read_split(folder / f"{name}.{split}.inter"), eval_set(ds, split, max_len)
        assert [r[0] for r in rows] == list(users)
        assert [r[2] for r in rows] == es.targets.tolist()
        assert [r[1] for r in rows] == [h[h > 0].tolist() for h in es.histories.numpy()]
    # training rows: every target of rodpo's training windows, once, with its last max_len items as history
    rows = read_split(folder / f"{name}.train.inter")
    win = training_windows(ds.sequences, max_len)
    assert len(rows) == int(((win[:, :-1] > 0) & (win[:, 1:] > 0)).sum())
    seqs = {u: s.tolist() for u, s in zip(users, ds.sequences)}
    for u, h, t in rows[:: max(1, len(rows) // 5000)]:
        s = seqs[u]
        j = len(h) if len(h) < max_len else next(j for j in range(max_len, len(s) - 2) if s[j - max_len:j] == h and s[j] == t)
        assert s[:j][-max_len:] == h and s[j] == t and 1 <= j <= len(s) - 3
    # and rodpo's own atomic reader (another parser) gives back the same users, catalogue and (cut) sequences
    back = read_atomic(folder, name)
    assert back.user_ids == list(users) and back.n_items == ds.n_items
    assert [s.tolist() for s in back.sequences] == [s.tolist()[-(max_len + 1):] for s in ds.sequences]


def test_round_trip_small(tmp_path):
    ds = SeqDataset("toy", [np.array([3, 1, 2, 5, 6, 2, 4]), np.array([4, 4, 2]), np.array([1, 2, 3])], 6, ["a", "b", "c"])
    check(ds, tmp_path / "toy", "toy", 3)


def test_round_trip_beauty(shared_data, tmp_path):
    ds = load_dataset("beauty", shared_data)
    check(ds, tmp_path / "beauty", "beauty", 50)
    counts = [len(recbole_rows(ds)[k][2]) for k in SPLITS]
    assert counts == [ds.n_interactions - 3 * ds.n_users, ds.n_users, ds.n_users]


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="fewer than 3 items"):
        to_recbole(SeqDataset("x", [np.array([1, 2, 3]), np.array([1, 2])], 3), tmp_path / "x")
    with pytest.raises(ValueError, match="whitespace"):
        to_recbole(SeqDataset("x", [np.array([1, 2, 3])], 3, ["user one"]), tmp_path / "x")
    assert not (tmp_path / "x" / "x.inter").exists()  # nothing written when the dataset is refused
    with pytest.raises(ValueError, match="folder named 'beauty'"):
        recbole_config(tmp_path, "beauty")


def test_config(tmp_path):
    cfg = recbole_config(tmp_path / "beauty", "beauty")
    assert cfg["benchmark_filename"] == ["train", "valid", "test"] and cfg["alias_of_item_id"] == ["item_id_list"]
    assert cfg["data_path"] == str(tmp_path.resolve()) and cfg["MAX_ITEM_LIST_LENGTH"] == 50
    assert recbole_config(tmp_path / "beauty", "beauty", benchmark=False)["load_col"] == {"inter": ["user_id", "item_id", "timestamp"]}
