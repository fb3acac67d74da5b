"""Experiment config: YAML loading, dotted overrides, clear errors, saving the resolved config."""
from pathlib import Path

import pytest
import yaml

from gtpt.engine.experiment import ConfigError, Experiment, load_experiment
from tests.helpers import REPO_ROOT

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def test_all_shipped_configs_load():
    names = {p.name for p in CONFIGS}
    for size in "tsb":
        assert f"gtpt_{size}_coco.yaml" in names and f"gtpt_{size}_wholebody.yaml" in names
    assert "tiny_cpu.yaml" in names
    for p in CONFIGS:
        exp = load_experiment(p)
        assert exp.data.num_joints == exp.model.num_joints


def test_paper_recipe_values():
    exp = load_experiment(REPO_ROOT / "configs" / "gtpt_t_coco.yaml")
    t = exp.train
    assert (t.epochs, t.lr, t.milestones, t.gamma, t.batch_size, t.weight_decay) == (300, 1e-3, (200, 260), 0.1, 64, 0.0)
    assert t.ema_momentum == 0.996 and t.keep_rate_warmup_epochs == 0
    assert exp.model.name == "gtpt-t-body" and exp.model.keep_rates == (1.0, 0.7, 0.3, 0.1)
    assert exp.data.val_boxes.endswith("COCO_val2017_detections_AP_H_56_person.json")
    assert exp.eval.flip_test and exp.eval.oks_nms == 0.9 and exp.eval.kpt_score_thr == 0.01
    wb = load_experiment(REPO_ROOT / "configs" / "gtpt_b_wholebody.yaml")
    assert wb.model.num_joints == 133 and wb.model.keep_rates == (1.0, 0.7, 0.5, 0.3)
    assert wb.data.train_ann.endswith("coco_wholebody_train_v1.0.json")


def test_dotted_overrides():
    exp = load_experiment(REPO_ROOT / "configs" / "gtpt_t_coco.yaml",
                          ["train.epochs=3", "data.train_ann=/x.json", "model.keep_rates=[1,1,0.5,0.3]",
                           "data.aug.flip_prob=0.1", "train.grad_clip=1.5", "train.amp=bf16",
                           "eval.flip_test=false", "output_dir=/tmp/o"])
    assert exp.train.epochs == 3 and exp.data.train_ann == "/x.json"
    assert exp.model.keep_rates == (1.0, 1.0, 0.5, 0.3)
    assert exp.data.aug.flip_prob == 0.1 and exp.data.aug.rotation_prob == 0.6
    assert exp.train.grad_clip == 1.5 and exp.train.amp == "bf16" and not exp.eval.flip_test
    assert exp.output_dir == "/tmp/o"


def test_unknown_key_in_yaml_names_key_and_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    assert "train.epochz" in str(e.value) and str(p) in str(e.value)
    p.write_text("model:\n  name: gtpt-t-body\n  depthh: 3\n")
    with pytest.raises(ConfigError, match="model.depthh"):
        load_experiment(p)
    p.write_text("trainer: {}\n")
    with pytest.raises(ConfigError, match="'trainer'"):
        load_experiment(p)


def test_bad_overrides_and_values():
    with pytest.raises(ConfigError, match="data.aug.flip_probb"):
        load_experiment(None, ["data.aug.flip_probb=0.2"])
    with pytest.raises(ConfigError, match="key=value"):
        load_experiment(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="amp"):
        load_experiment(None, ["train.amp=fp8"])
    with pytest.raises(ConfigError, match="unknown model.name"):
        load_experiment(None, ["model.name=gtpt-x-body"])
    with pytest.raises(ConfigError, match="num_joints"):
        load_experiment(None, ["data.num_joints=133"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_experiment("/nope.yaml")


def test_save_roundtrip(tmp_path):
    exp = load_experiment(REPO_ROOT / "configs" / "gtpt_s_wholebody.yaml",
                          ["train.epochs=7", f"output_dir={tmp_path}"])
    path = exp.save()
    assert path == Path(tmp_path) / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["train"]["epochs"] == 7 and raw["model"]["name"] == "gtpt-s-wholebody"
    again = load_experiment(path)
    assert isinstance(again, Experiment) and again.to_dict() == exp.to_dict()


def test_numbers_written_without_a_dot_are_numbers(tmp_path):
    # YAML 1.1 reads 1e-3 as the string '1e-3'; a user writing it must still get lr = 0.001
    p = tmp_path / "lr.yaml"
    p.write_text("train:\n  lr: 1e-3\n  grad_clip: 5\n  epochs: 4\ndata:\n  aug:\n    scale_factor: 3e-1\n")
    exp = load_experiment(p, ["eval.kpt_score_thr=2e-2"])
    assert isinstance(exp.train.lr, float) and exp.train.lr == 1e-3
    assert exp.train.grad_clip == 5.0 and exp.data.aug.scale_factor == 0.3
    assert exp.eval.kpt_score_thr == 0.02 and exp.train.epochs == 4
    with pytest.raises(ConfigError, match="'train.lr' must be a number, got 'fast'"):
        load_experiment(p, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="'train.epochs' must be an integer"):
        load_experiment(p, ["train.epochs=2.5"])
    with pytest.raises(ConfigError, match="'train.batch_size' must be a number"):
        load_experiment(p, ["train.batch_size=true"])


def test_train_print_config_shows_every_setting_and_loads_back(tmp_path, capsys):
    """`gtpt train CONFIG --print-config`: the resolved config (defaults and --opt included) as YAML,
    which loads back as the same experiment; nothing is read or written; a typo is named."""
    from gtpt.cli import main
    config = REPO_ROOT / "configs" / "gtpt_s_wholebody.yaml"
    out_dir = tmp_path / "run"
    opts = ["train.accum_steps=4", "data.aug.flip_prob=0.25"]
    assert main(["train", str(config), "--print-config", "--output-dir", str(out_dir), "--opt", *opts]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = load_experiment(config, opts, output_dir=str(out_dir)).to_dict()
    assert printed == expected and not out_dir.exists()
    assert printed["train"]["accum_steps"] == 4 and printed["data"]["aug"]["flip_prob"] == 0.25
    assert printed["train"]["ema_warmup"] is False and printed["model"]["name"] == "gtpt-s-wholebody"   # defaults
    (tmp_path / "printed.yaml").write_text(yaml.safe_dump(printed))
    assert load_experiment(tmp_path / "printed.yaml").to_dict() == expected
    assert main(["train", str(config), "--print-config", "--opt", "train.accum_step=4"]) == 1
    assert "unknown key 'train.accum_step'" in capsys.readouterr().out
