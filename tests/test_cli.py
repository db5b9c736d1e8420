"The commands of every stage: options documented from the configurations' field comments, defaults shown, clean errors, real runs."
import json
import subprocess
import sys
import tomllib
from dataclasses import fields
from importlib import import_module
from pathlib import Path

import pytest
import torch

from rodpo.dpo import DPOConfig
from rodpo.experiment import ExperimentConfig
from rodpo.model import SASRecConfig
from rodpo.negatives import SamplerConfig
from rodpo.runs import field_help
from rodpo.train import TrainConfig, MODEL_FILLED

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"rodpo-train": [TrainConfig, SASRecConfig], "rodpo-dpo": [DPOConfig, SamplerConfig], "rodpo-experiment": [ExperimentConfig]}
NOT_OPTIONS = set(MODEL_FILLED) | {"sampler", "out_dir"}  # taken from the dataset; given as the sampler's own fields; named by the command itself


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _main(command):
    module, _, fn = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"][command].partition(":")
    return getattr(import_module(module), fn)


def _help(command, capsys) -> str:
    "The command's --help as one line (argparse wraps to $COLUMNS, and would break `feed-forward` after its hyphen)."
    with pytest.MonkeyPatch.context() as mp, pytest.raises(SystemExit) as e:
        mp.setenv("COLUMNS", "100000")
        _main(command)(["--help"])
    assert e.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("cls", [TrainConfig, SASRecConfig, DPOConfig, SamplerConfig, ExperimentConfig])
def test_every_configuration_field_has_a_help_text(cls):
    helps = field_help(cls)
    assert set(helps) == {f.name for f in fields(cls)}
    assert not [k for k, v in helps.items() if not v], f"{cls.__name__}: fields without a comment"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_documents_every_option_with_its_default(command, capsys):
    text = _help(command, capsys)
    for cls in COMMANDS[command]:
        helps = field_help(cls)
        for f in fields(cls):
            if f.name in NOT_OPTIONS: continue
            i = text.find(f"--{f.name} ", text.find("options:"))
            assert i > 0, f"{command}: no --{f.name}"
            entry = text[i:text.find(" --", i + 3)]
            assert helps[f.name] in entry, (f.name, entry)
            assert "(default: " in entry or "(required)" in entry, (f.name, entry)
    assert "--out_dir" in text


def test_defaults_shown_are_the_configurations(capsys):
    text = _help("rodpo-train", capsys)
    assert "(default: 0.001)" in text and "(default: ndcg@10)" in text and "(default: id)" in text
    text = _help("rodpo-dpo", capsys)
    assert "--stage1 STR run folder of the stage-1 reference model (its best.pt) (required)" in text
    assert "--tau FLOAT softmax temperature over pool scores; None = uniform over the pool (default: None)" in text
    assert "(default: 0,1,2)" in _help("rodpo-experiment", capsys)


def _printed_json(text: str) -> dict:
    "The JSON object a command prints last, after its log lines."
    i = text.rfind("\n{\n")
    return json.loads(text[i + 1:] if i >= 0 else text)


@pytest.fixture(scope="module")
def data_file(shared_data, tmp_path_factory):
    "The first 600 users of Beauty as the user's own file."
    f = tmp_path_factory.mktemp("data") / "beauty600.txt"
    f.write_text("".join((shared_data / "s3rec/Beauty.txt").read_text().splitlines(keepends=True)[:600]))
    return f


@pytest.fixture(scope="module")
def stage1(data_file, tmp_path_factory):
    from rodpo.train import main
    out = tmp_path_factory.mktemp("runs") / "ref"
    main(["--dataset", str(data_file), "--hidden", "16", "--max_epochs", "1", "--batch_size", "128", "--device", "cpu",
          "--progress", "false", "--out_dir", str(out)])
    return out


def test_rodpo_dpo_runs_from_a_stage1_folder(stage1, data_file, tmp_path, capsys):
    from rodpo.dpo import main, fit_dpo
    from rodpo.data import load_dataset
    capsys.readouterr()
    main(["--stage1", str(stage1), "--strategy", "hard", "--max_epochs", "1", "--eval_every", "3", "--device", "cpu",
          "--progress", "false", "--out_dir", str(tmp_path / "cli")])
    printed = _printed_json(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "cli/metrics.json").read_text())
    cfg = DPOConfig(str(stage1), sampler=SamplerConfig("hard"), max_epochs=1, eval_every=3, device="cpu", progress=False)
    direct = fit_dpo(load_dataset(data_file), cfg, tmp_path / "direct", log=lambda *a: None)
    assert printed["test"] == direct["test"] and printed["strategy"] == "hard"
    assert json.loads((tmp_path / "cli/config.json").read_text())["dpo"] == json.loads((tmp_path / "direct/config.json").read_text())["dpo"]


@pytest.mark.parametrize("argv,msg", [
    (["--beta", "0"], "beta=0.0 must be"),
    (["--strategy", "nope"], "strategy='nope' is not one of"),
    (["--dataset", "toys"], "is not the one the stage-1 run"),
])
def test_rodpo_dpo_errors_are_one_line(stage1, tmp_path, argv, msg):
    from rodpo.dpo import main
    with pytest.raises(SystemExit, match="^rodpo-dpo: error: .*" + msg):
        main(["--stage1", str(stage1), "--device", "cpu", "--out_dir", str(tmp_path / "x")] + argv)


def test_rodpo_dpo_without_a_stage1_run(tmp_path):
    from rodpo.dpo import main
    with pytest.raises(SystemExit, match="^rodpo-dpo: error: no stage-1 run at"):
        main(["--stage1", str(tmp_path / "nothing"), "--out_dir", str(tmp_path / "x")])


def test_rodpo_experiment_writes_the_summary(data_file, tmp_path, capsys):
    from rodpo.experiment import main
    out = tmp_path / "exp"
    main(["--dataset", str(data_file), "--strategies", "continue,hard", "--seeds", "0", "--out", str(out),
          "--model", '{"hidden": 16}', "--stage1", '{"max_epochs": 1, "device": "cpu"}', "--dpo", '{"max_epochs": 1, "eval_every": 3, "device": "cpu"}'])
    printed = _printed_json(capsys.readouterr().out)
    assert {r["strategy"] for r in printed["summary"]} == {"reference", "continue", "hard"}
    assert (out / "summary.csv").exists() and "| strategy" in (out / "summary.md").read_text()


def test_rodpo_experiment_errors_are_one_line(tmp_path):
    from rodpo.experiment import main
    with pytest.raises(SystemExit, match="^rodpo-experiment: error: ExperimentConfig: strategy='soft'"):
        main(["--dataset", "toys", "--strategies", "hard,soft", "--out", str(tmp_path / "x")])


def test_benchmark_script_runs_by_its_path():
    "A benchmark script runs by its path from the repository root (benchmarks/<group>/<name>.py) and its help is its docstring, which names that path."
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks/study/regimes_report.py"), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "python benchmarks/study/regimes_report.py" in r.stdout and "--readme" in r.stdout, r.stdout + r.stderr
