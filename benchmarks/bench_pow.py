"""What a proof of work costs each side (docs/invites.md): the sender's time to find one
at each difficulty, and the receiver's time to check one, beside the cost of opening
and verifying the request that carries it (which the receiver pays first).

    .venv/bin/python benchmarks/bench_pow.py [--tries 20] [--max-bits 20]

Each difficulty is solved ``--tries`` times with fresh nonces (fewer above 20 bits:
each takes tens of seconds); times are wall-clock on this machine, one core.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nacl.signing import SigningKey  # noqa: E402

from blockhub import proof_of_work  # noqa: E402
from blockhub.handshake_bodies import open_request, seal_request  # noqa: E402
from blockhub.identity import Identity  # noqa: E402


def identity() -> Identity:
    return Identity(SigningKey(os.urandom(32)))


def solve_times(a: Identity, b: Identity, bits: int, tries: int) -> list[float]:
    times = []
    for _ in range(tries):
        nonce, at = os.urandom(16), int(time.time())
        started = time.perf_counter()
        proof_of_work.solve(a.id, b.id, nonce, at, bits)
        times.append(time.perf_counter() - started)
    return times


def per_call(f, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - started) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--max-bits", type=int, default=20)
    args = parser.parse_args()
    a, b = identity(), identity()
    nonce, at = os.urandom(16), int(time.time())
    counter = proof_of_work.solve(a.id, b.id, nonce, at, 12)
    check = per_call(lambda: proof_of_work.check(a.id, b.id, nonce, at, counter, 12), 20000)
    sealed = seal_request(a, b.id, None, at, nonce, "", pow=counter)
    opening = per_call(lambda: open_request(b, sealed, a.id, at), 2000)
    started = time.perf_counter()
    proof_of_work.solve(a.id, b.id, nonce, at, proof_of_work.MAX_BITS, limit=2 ** 20)
    rate = 2 ** 20 / (time.perf_counter() - started)  # a fixed count: no luck in it
    print(f"receiver: checking a proof {check * 1e6:.1f} us; opening and verifying the "
          f"request first {opening * 1e6:.0f} us (a proof adds "
          f"{100 * check / opening:.1f}% to what a refused request costs)")
    print(f"sender: about {rate:,.0f} tries a second on one core")
    print("bits  expected tries  median s  max s  (tries)")
    for bits in range(8, args.max_bits + 1, 2):
        n = args.tries if bits <= 20 else max(3, args.tries // 5)
        times = solve_times(a, b, bits, n)
        print(f"{bits:4d}  {2 ** bits:14,d}  {statistics.median(times):8.3f}  "
              f"{max(times):5.2f}  ({n})")


if __name__ == "__main__":
    main()
