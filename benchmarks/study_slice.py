"""A slice of the committed Imagenette study, re-run on a GPU: wall time, projection, top-1 parity.

Takes ``--n`` trials of a committed sweep (default ``data/results/imagenette/sweep``, trained on CPU),
spread evenly over its FLOPs range, and writes a new sweep with the same dials and the same training
template (recipe, epochs, base resolution, seed, tensor pipeline) except the device and the data
folder. It runs it with ``rubik sweep run DIR --processes N --devices cuda:0,...`` (several trials at
once on one GPU), then reports

* the wall time of the slice and the time projected for all of the study's trials, scaled by trial
  count and by FLOPs (the slice is spread over the FLOPs range, so both are rough: a trial's time is
  a fixed cost plus a FLOPs-proportional part, and concurrent trials share the GPU);
* top-1 of every trial next to its committed CPU top-1: the mean paired difference with its 95 %
  t-interval and the std of the differences, against the noise of comparing two single trainings,
  sqrt(2) x 1.65 = 2.33 points (B0's seed std at this budget, REPORT.md "Seed noise").

Training data differ slightly from the committed runs when ``--data`` is the compact copy (images
re-encoded at 91 px by ``rubik data compact``; the study's cache resizes 224-px JPEGs), and GPU
training runs in bf16 autocast: parity "within seed noise" is the claim checked.

    python benchmarks/study_slice.py --data .devdata/imagenette --n 20 --processes 10 --out results/slice.json
    python benchmarks/study_slice.py --quick --device cpu --data DIR     # 2 trials, 1 epoch, 10 img/class
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SEED_STD = 1.65   # B0's top-1 std over 3 seeds at the study budget (REPORT.md, "Seed noise")


def pick_trials(trials: list[dict], n: int, smallest: bool = False) -> list[dict]:
    """``n`` trials spread evenly over the FLOPs order (smallest and largest included), or the ``n`` smallest."""
    order = sorted(trials, key=lambda t: (t.get("flops") or 0, str(t["id"])))
    if smallest:
        return order[:n]
    if n >= len(order):
        return order
    idx = sorted({round(i * (len(order) - 1) / max(n - 1, 1)) for i in range(n)})
    return [order[i] for i in idx]


def slice_template(template: dict, *, data: str, device: str, threads: int | None,
                   epochs: int | None, per_class: int | None) -> dict:
    t = copy.deepcopy(template)
    t["device"] = device
    t["data"]["root"] = str(Path(data).resolve())
    t["data"]["cache_dir"] = None          # $RUBIK_CACHE_DIR or ~/.cache/rubik on the node
    t["progress"] = False
    t["out_dir"], t["resume"] = None, False
    if threads is not None:
        t["threads"] = threads
    if epochs is not None:
        t["epochs"] = epochs
    if per_class is not None:
        t["data"]["train_per_class"] = t["data"]["val_per_class"] = per_class
    return t


def t_quantile_975(dof: int) -> float:
    try:
        from scipy.stats import t
        return float(t.ppf(0.975, dof))
    except ImportError:   # normal approximation
        return 1.96


def compare(committed_dir: Path, slice_dir: Path, wall_s: float, n_all: int, flops_all: float) -> dict:
    from rubik.sweep import load_results

    df = load_results(slice_dir)
    rows = []
    for r in df.itertuples():
        rec = json.loads((committed_dir / "trials" / f"{r.id}.json").read_text())
        cpu = (rec.get("metrics") or {}).get("top1")
        gpu = r.top1 if r.status == "done" and not math.isnan(r.top1) else None
        rows.append({"id": r.id, "flops": int(r.flops), "resolution": int(r.resolution), "status": r.status,
                     "cpu_top1": cpu, "gpu_top1": gpu, "diff": None if gpu is None or cpu is None else gpu - cpu,
                     "gpu_time_s": None if r.status != "done" else r.time_s, "cpu_time_s": rec.get("time_s")})
    done = [x for x in rows if x["diff"] is not None]
    out = {"trials": len(rows), "done": len(done), "wall_s": round(wall_s, 1), "rows": rows}
    if done:
        diffs = [x["diff"] for x in done]
        m = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((d - m) ** 2 for d in diffs) / (len(diffs) - 1)) if len(diffs) > 1 else None
        half = t_quantile_975(len(diffs) - 1) * sd / math.sqrt(len(diffs)) if sd is not None else None
        flops_done = sum(x["flops"] for x in done)
        out.update(
            mean_diff=m, sd_diff=sd, ci95=[m - half, m + half] if half is not None else None,
            pair_noise_sd=math.sqrt(2) * SEED_STD,
            gpu_trial_s_mean=sum(x["gpu_time_s"] for x in done) / len(done),
            cpu_trial_s_mean=sum(x["cpu_time_s"] for x in done if x["cpu_time_s"]) / len(done),
            projected_all_s_by_count=wall_s * n_all / len(done),
            projected_all_s_by_flops=wall_s * flops_all / flops_done if flops_done else None,
            n_all=n_all)
    return out


def run_group(cmd, env, timeout_s) -> int | str:
    """Run ``cmd`` in its own process group; on timeout SIGTERM the whole group (the sweep's workers release
    their claims and free the GPU), then SIGKILL what is left."""
    import signal

    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return "timeout"
    except BaseException:   # our own SIGTERM / Ctrl-C: take the sweep down with us
        os.killpg(proc.pid, signal.SIGTERM)
        raise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="src", default=str(ROOT / "data/results/imagenette/sweep"),
                   help="committed sweep directory (sweep.json + trials/)")
    p.add_argument("--data", default=os.environ.get("RUBIK_DATA_DIR", str(ROOT / ".devdata/imagenette")))
    p.add_argument("--dir", default=None, help="the new sweep's directory (default: a temporary one)")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--processes", type=int, default=10)
    p.add_argument("--device", default="cuda", help="cuda (one GPU, all processes on cuda:0) or cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per trial process")
    p.add_argument("--epochs", type=int, default=None, help="override the study's epochs (quick runs only)")
    p.add_argument("--per-class", type=int, default=None, help="train/val images per class (quick runs only)")
    p.add_argument("--timeout-s", type=float, default=None, help="stop the sweep after this long (trials in flight are lost)")
    p.add_argument("--smallest", action="store_true", help="take the n smallest trials, not a spread")
    p.add_argument("--quick", action="store_true", help="the 2 smallest trials, 1 epoch, 10 images per class")
    p.add_argument("--out", default=None, help="JSON summary")
    args = p.parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # `timeout`: stop the sweep's process group too
    if args.quick:
        args.n, args.epochs, args.per_class, args.smallest = 2, 1, args.per_class or 10, True
        args.processes = min(args.processes, 2)

    from rubik.sweep import init_sweep, load_spec

    src = Path(args.src)
    spec = load_spec(src)
    trials = pick_trials(spec["trials"], args.n, args.smallest)
    tmpl = slice_template(spec["template"], data=args.data, device=args.device, threads=args.threads,
                          epochs=args.epochs, per_class=args.per_class)
    import tempfile

    d = Path(args.dir or tempfile.mkdtemp(prefix="rubik-slice-"))
    init_sweep(d, trials, tmpl, meta={"slice_of": str(src), "n": len(trials), "device": args.device})
    dev = "cuda:0" if args.device.startswith("cuda") else args.device
    cmd = [sys.executable, "-m", "rubik", "sweep", "run", str(d), "--processes", str(args.processes),
           "--devices", ",".join([dev] * args.processes), "--no-progress"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    print(f"[study_slice] {len(trials)} trials of {src} ({args.device}, {args.processes} processes): {' '.join(cmd)}",
          flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    t0 = time.perf_counter()
    rc = run_group(cmd, env, args.timeout_s)
    wall = time.perf_counter() - t0
    all_trials = spec["trials"]
    out = compare(src, d, wall, len(all_trials), float(sum(t.get("flops") or 0 for t in all_trials)))
    out.update(sweep_dir=str(d), returncode=rc, device=args.device, processes=args.processes,
               epochs=tmpl.get("epochs"), per_class=args.per_class, command=" ".join(cmd))
    if args.device.startswith("cuda"):
        import torch

        out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for r in out["rows"]:
        g = f"{r['gpu_top1']:.2f}" if r["gpu_top1"] is not None else r["status"]
        print(f"  {r['id']:<10} {r['resolution']:>3} px {r['flops'] / 1e6:7.1f} MFLOPs  cpu {r['cpu_top1']:.2f}  "
              f"{args.device} {g}  time {r['gpu_time_s'] or 0:.0f} s (cpu {r['cpu_time_s'] or 0:.0f} s)")
    if out.get("done"):
        ci = out["ci95"]
        print(f"[study_slice] {out['done']}/{out['trials']} trials in {wall:.0f} s wall; all {out['n_all']}: "
              f"~{out['projected_all_s_by_count'] / 60:.1f} min by count, "
              f"~{out['projected_all_s_by_flops'] / 60:.1f} min by FLOPs; top-1 {args.device} - cpu: "
              f"mean {out['mean_diff']:+.2f}" + (f" (95% CI {ci[0]:+.2f}..{ci[1]:+.2f}), sd {out['sd_diff']:.2f}"
                                                 if ci else "") + f" vs pair noise sd {out['pair_noise_sd']:.2f}")
    else:
        print(f"[study_slice] no trial finished in {wall:.0f} s (rc {rc})")
    return 0 if out.get("done") == out["trials"] else 1


if __name__ == "__main__":
    sys.exit(main())
