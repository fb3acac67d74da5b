"""DDP: the sharded sampler, and real torchrun runs (gloo, CPU): 2 processes against one, and
2 "nodes" (two torchrun launchers, as on two machines, each with its own folder) against one."""
import json
import socket
import subprocess
import sys
from pathlib import Path

from gtpt.engine.distributed import ShardSampler
from gtpt.engine.experiment import load_experiment
from gtpt.engine.state import load_checkpoint
from gtpt.engine.trainer import Trainer
from gtpt.export import export_onnx
from gtpt.models.checkpoint import load_model
from tests.engine_helpers import TINY, data_opts, dataset, env, load_safetensors, max_diff, run


def _batches(sampler, batch):
    keys = [i for _, i in sampler]
    return [keys[j:j + batch] for j in range(0, len(keys), batch)]


def test_shards_form_the_single_process_batches():
    one = _batches(_set(ShardSampler(23, 4, seed=3), 2), 4)
    r0 = _batches(_set(ShardSampler(23, 2, num_replicas=2, rank=0, seed=3), 2), 2)
    r1 = _batches(_set(ShardSampler(23, 2, num_replicas=2, rank=1, seed=3), 2), 2)
    assert len(one) == len(r0) == len(r1) == 23 // 4
    for a, b, c in zip(one, r0, r1):
        assert a == b + c
    # skipping the batches done before a resume
    tail = _batches(ShardSampler(23, 4, seed=3), 4)
    s = ShardSampler(23, 4, seed=3)
    s.set_epoch(0, start_batch=2)
    assert _batches(s, 4) == tail[2:] and len(s) == 4 * (len(tail) - 2)
    # another epoch, another order; evaluation shards cover everything once
    assert one != _batches(ShardSampler(23, 4, seed=3), 4)
    ev = [list(ShardSampler(7, 2, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert sorted(i for e in ev for _, i in e) == list(range(7))


def test_accumulated_forwards_hold_what_more_devices_would():
    """train.accum_steps: the trainer's sampler deals batch x accum per rank and step, its loader
    cuts that into accum forwards. Forward j of rank r = rank r x accum + j of world x accum devices."""
    batch, accum, world = 3, 2, 2
    for r in range(world):
        forwards = _batches(_set(ShardSampler(53, batch * accum, num_replicas=world, rank=r, seed=5), 1), batch)
        for j in range(accum):
            device = _batches(_set(ShardSampler(53, batch, num_replicas=world * accum, rank=r * accum + j,
                                                seed=5), 1), batch)
            assert forwards[j::accum] == device and len(device) == 53 // (batch * world * accum)


def _set(s, epoch):
    s.set_epoch(epoch)
    return s


def test_torchrun_two_processes_match_one_process(tmp_path):
    """2 processes x batch 2 == 1 process x batch 4, with frozen BatchNorm.

    Per-device BatchNorm statistics (the reference's behaviour) make 2x2 and 1x4 different
    models by design, and SyncBatchNorm does not run on CPU/gloo, so this parity check freezes
    BN (train.freeze_bn): every sample is then processed independently and only the gradient
    all-reduce and the sharded data order are under test. What remains is float summation order
    (a 2-way average of two batch-2 means vs one batch-4 mean), amplified by Adam's normalisation.
    """
    d = dataset(tmp_path / "d", num_images=4, people=2, seed=11)
    opts = data_opts(d) + ["train.epochs=1", "train.freeze_bn=true", "train.ckpt_interval=0"]
    one = tmp_path / "one"
    Trainer(load_experiment(TINY, opts + ["train.batch_size=4"], output_dir=str(one)), device="cpu").fit()
    two = tmp_path / "two"
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    p = run([torchrun, "--standalone", "--nproc-per-node=2", "-m", "gtpt", "train", TINY,
             "--output-dir", str(two), "--device", "cpu", "--opt", *opts, "train.batch_size=2"])
    assert "done:" in p.stdout
    c1, c2 = load_checkpoint(one / "last.ckpt"), load_checkpoint(two / "last.ckpt")
    assert c1["global_step"] == c2["global_step"] == 2 and c2["world_size"] == 2
    live = max_diff(c1["model"], c2["model"])
    ema = max_diff(load_safetensors(one / "model.safetensors"), load_safetensors(two / "model.safetensors"))
    print(f"DDP parity: live max|diff| {live:.3g}, EMA max|diff| {ema:.3g}")
    assert live < 1e-5 and ema < 1e-5
    moved = max_diff(c1["model"], {k: v for k, v in c1["ema"].items()})
    assert moved > 1e-4   # the weights really trained (the comparison is not vacuous)
    # one process accumulating 2 forwards of 2 is the same step as one forward of 4
    acc = tmp_path / "accum"
    Trainer(load_experiment(TINY, opts + ["train.batch_size=2", "train.accum_steps=2"], output_dir=str(acc)),
            device="cpu").fit()
    c5 = load_checkpoint(acc / "last.ckpt")
    assert c5["global_step"] == 2 and max_diff(c1["model"], c5["model"]) < 1e-5


def test_two_nodes_train_resume_and_evaluate_without_a_shared_folder(tmp_path):
    """2 nodes of 1 process: two torchrun launchers meeting at a master address, as
    `torchrun --nnodes=2 --node-rank=N --master-addr=HOST` on two machines. Each "machine" has its
    own run folder (the same relative --output-dir from another working directory): only rank 0
    writes, and a resume or an evaluation reads rank 0's files for every rank. Each node accumulates
    2 forwards of 1 (train.accum_steps, DDP's no_sync): 4 devices' worth, the same step as 1 x 4."""
    d = dataset(tmp_path / "d", num_images=4, people=2, seed=11)
    opts = data_opts(d) + ["train.epochs=1", "train.freeze_bn=true", "train.ckpt_interval=0"]
    one = tmp_path / "one"
    Trainer(load_experiment(TINY, opts + ["train.batch_size=4"], output_dir=str(one)), device="cpu").fit()
    c1 = load_checkpoint(one / "last.ckpt")
    machines = [tmp_path / "machine0", tmp_path / "machine1"]
    train = ["train", TINY, "--output-dir", "run", "--device", "cpu"]
    accum = opts + ["train.batch_size=1", "train.accum_steps=2"]
    outs = _two_nodes(machines, *train, "--opt", *accum)
    assert "done:" in outs[0] and "done:" not in outs[1]   # the second node's rank is 1, not its local 0
    c3 = load_checkpoint(machines[0] / "run" / "last.ckpt")
    assert c3["world_size"] == 2 and c3["global_step"] == 2 and not (machines[1] / "run").exists()
    assert max_diff(c1["model"], c3["model"]) < 1e-5
    _two_nodes(machines, *train, "--resume", "auto", "--opt", *accum, "train.epochs=2")
    c4 = load_checkpoint(machines[0] / "run" / "last.ckpt")
    assert (c4["epoch"], c4["global_step"]) == (2, 4) and not (machines[1] / "run").exists()
    # `gtpt eval` on both nodes of weights that only the first has: rank 0 reads them for everyone
    for weights in ("run/model.safetensors", "run/model.onnx"):   # PyTorch weights, an exported graph
        if weights.endswith(".onnx"):
            export_onnx(load_model(machines[0] / "run" / "model.safetensors"), machines[0] / weights, verbose=False)
        outs = _two_nodes(machines, "eval", TINY, "--checkpoint", weights, "--gt-boxes", "--device", "cpu",
                          "--out", "results.json", "--opt", *data_opts(d, d))
        assert "AP" in outs[0] and not (machines[1] / "results.json").exists(), outs
        assert len(json.loads((machines[0] / "results.json").read_text())) == 8   # both ranks' people


def _two_nodes(machines, *args) -> list[str]:
    """`gtpt ARGS` on 2 nodes of 1 process each, node N in the working directory machines[N];
    their outputs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    one_core = {**env(), "OMP_NUM_THREADS": "1"}   # each "machine" its own core, as torchrun gives 2 local ranks
    procs = []
    for n, cwd in enumerate(machines):
        cwd.mkdir(exist_ok=True)
        cmd = [torchrun, "--nnodes=2", "--nproc-per-node=1", f"--node-rank={n}", "--master-addr=127.0.0.1",
               f"--master-port={port}", "-m", "gtpt", *args]
        procs.append(subprocess.Popen(cmd, cwd=cwd, env=one_core, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:   # a hung rank (the failure this guards against) must not outlive the test
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    return outs
