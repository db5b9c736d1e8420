"""What a newcomer runs into first: a path that does not exist, a comma-separated file, a parameter rodpo-reproduce sets itself,
and the main job's progress written to a log file."""
import json

import pytest

from rodpo.data import DatasetNotFoundError, DataFormatError, UnknownDatasetError, load_dataset
from rodpo.reproduce import _Watch, main


@pytest.mark.parametrize("name", ["data/mine.txt", "./mine", "~/nowhere/seqs", "mine.txt"])
def test_a_missing_path_says_file_not_found(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset(name)
    msg = str(e.value)
    assert msg.startswith(f"No such file or folder: {name!r}") and str(tmp_path) in msg and "beauty" in msg
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, UnknownDatasetError)


def test_a_misspelt_name_is_still_an_unknown_dataset():
    with pytest.raises(UnknownDatasetError) as e:
        load_dataset("beuaty")
    assert not isinstance(e.value, DatasetNotFoundError) and "Unknown dataset 'beuaty'" in str(e.value)


@pytest.mark.parametrize("text, shown", [("1,2,3,4\n2,3,4,5\n", "separated by ','"),
                                         ("1, 2, 3, 4\n", "'2,' is not an integer: an S3-Rec file separates ids by spaces"),
                                         ("1;2;3;4\n", "separated by ';'")])
def test_a_comma_separated_file_names_the_separator_and_the_fix(text, shown, tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text(text)
    with pytest.raises(DataFormatError) as e:
        load_dataset(str(f))
    assert shown in str(e.value) and "tr " in str(e.value) and "line 1" in str(e.value), str(e.value)


@pytest.mark.parametrize("name, fix", [("out_dir", "--out"), ("dataset", "as arguments")])
def test_reproduce_refuses_the_parameters_it_sets_itself(name, fix, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["scientific", "--out", str(tmp_path / "out"), "-p", name, "x"])
    assert f"-p {name} is set by rodpo-reproduce" in str(e.value.code) and fix in str(e.value.code)
    assert not (tmp_path / "out").exists()  # nothing written, nothing trained


def test_off_a_terminal_the_main_job_logs_one_line_per_finished_run(tmp_path, capsys):
    progress, lines = tmp_path / "progress.json", []
    w = _Watch(progress, lines.append, prefix="ds: ", live=False)  # polled by hand here; the thread polls the same way
    w._poll()  # no progress.json yet: nothing
    progress.write_text(json.dumps(dict(total=3, done=1, running={"hard-seed0": "step 5"}, lines=["[1/3] reference-seed0"])))
    w._poll(); w._poll()  # a poll with nothing new adds nothing
    progress.write_text(json.dumps(dict(total=3, done=3, running={}, lines=["[1/3] reference-seed0", "[2/3] a", "[3/3] b"])))
    w._poll()
    assert lines == ["ds: [1/3] reference-seed0", "ds: [2/3] a", "ds: [3/3] b"] and w.bar is None
    assert capsys.readouterr().err == ""  # no bar redrawn into a log
