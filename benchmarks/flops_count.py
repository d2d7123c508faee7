"""Candidates per second: analytic FLOPs count (from the config) vs ptflops (build + forward).

    python benchmarks/flops_count.py [--base efficientnet_b0] [--n-analytic 3000] [--n-ptflops 10]
                                     [--base-resolution 224] [--threads 1]

Random twists r, d, w ~ U(0.3, 1.2) x U(0.3, 1.2) x U(0.3, 1.2) (resolution floored at 32 px).
The ptflops path is what counting a candidate costs without the analytic model: build the
torch module and run one forward pass under ptflops. Both counts are also checked to agree.
Target: >= 1,000 candidates/s analytic on a laptop-class CPU.
"""
from __future__ import annotations

import argparse
import random
import time


def sample(n: int, seed: int, base_resolution: int) -> list[tuple[float, float, float]]:
    rng = random.Random(seed)
    lo_r = 32.0 / base_resolution + 1e-6
    return [(rng.uniform(max(0.3, lo_r), 1.2), rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2)) for _ in range(n)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="efficientnet_b0")
    p.add_argument("--n-analytic", type=int, default=3000)
    p.add_argument("--n-ptflops", type=int, default=10)
    p.add_argument("--base-resolution", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads for the ptflops path")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from rubik.flops import analytic_flops, count_flops
    from rubik.models import create_model
    from rubik.models import Arch

    if args.threads:
        torch.set_num_threads(args.threads)
    base_res = Arch(args.base, base_resolution=args.base_resolution).base_resolution
    kw = dict(base_resolution=base_res)

    twists = sample(args.n_analytic, args.seed, base_res)
    analytic_flops(args.base, twists[0], **kw)  # warm up (imports, caches)
    t0 = time.perf_counter()
    analytic = [analytic_flops(args.base, t, **kw) for t in twists]
    t_analytic = time.perf_counter() - t0

    few = twists[: args.n_ptflops]
    count_flops(create_model(args.base, twist=few[0], base_resolution=base_res))  # warm up
    t0 = time.perf_counter()
    measured = [count_flops(create_model(args.base, twist=t, base_resolution=base_res)) for t in few]
    t_ptflops = time.perf_counter() - t0

    worst = max(abs(a - m) / m for a, m in zip(analytic, measured))
    rate_a = len(twists) / t_analytic
    rate_p = len(few) / t_ptflops
    print(f"base {args.base}, base resolution {base_res} px, torch threads {torch.get_num_threads()}")
    print(f"{'method':<10} {'candidates':>10} {'seconds':>9} {'cand/s':>10} {'ms/cand':>9}")
    print(f"{'analytic':<10} {len(twists):>10} {t_analytic:>9.3f} {rate_a:>10.1f} {1e3 / rate_a:>9.3f}")
    print(f"{'ptflops':<10} {len(few):>10} {t_ptflops:>9.3f} {rate_p:>10.2f} {1e3 / rate_p:>9.1f}")
    print(f"speed-up analytic / ptflops: {rate_a / rate_p:.0f}x; "
          f"max relative difference on the {len(few)} shared candidates: {worst:.2e}")
    print(f"target >= 1000 candidates/s analytic: {'met' if rate_a >= 1000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
