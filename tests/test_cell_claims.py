"""The claim protocol alone, in one process and in milliseconds: exclusive claims, takeover after expiry only.

The worker-process tests (tests/test_workers.py, slow tier) show the same protocol end to end; these pin down
the rules they rely on, so a change to the protocol fails fast in the day-to-day tier.
"""

from __future__ import annotations

import threading
import time

import pytest

from erc_synth.classifiers.cell_claims import CellClaims


def test_racing_claimers_get_exactly_one_claim(tmp_path) -> None:
    claimers = [CellClaims(tmp_path, heartbeat=0.05, expiry=5.0) for _ in range(8)]
    barrier = threading.Barrier(len(claimers))
    won: list[object] = []

    def race(claims: CellClaims) -> None:
        barrier.wait()
        claim = claims.try_claim("meld-emoberta-org-0")
        if claim is not None:
            won.append(claim)

    threads = [threading.Thread(target=race, args=(c,)) for c in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    won[0].release(done=True)


def test_a_live_claim_is_kept_and_a_silent_one_is_taken_over_after_expiry(tmp_path) -> None:
    holder = CellClaims(tmp_path, heartbeat=0.05, expiry=1.0)
    other = CellClaims(tmp_path, heartbeat=0.05, expiry=1.0)
    claim = holder.try_claim("cell")
    assert claim is not None and claim.generation == 1
    deadline = time.monotonic() + 1.5  # longer than the expiry: the heartbeat keeps it alive all along
    while time.monotonic() < deadline:
        assert other.try_claim("cell") is None
        time.sleep(0.05)
    claim._stop.set()  # the holder stalls: no more heartbeats (as if SIGKILLed)
    claim._thread.join()
    time.sleep(0.1)
    assert other.try_claim("cell") is None  # first sight of the silent claim starts the observer's clock
    time.sleep(1.1)
    taken = other.try_claim("cell")
    assert taken is not None and taken.generation == 2
    assert holder.try_claim("cell") is None  # the new generation is alive
    taken.release(done=True)
    assert not (tmp_path / "cell").exists()


def test_expiry_must_exceed_two_heartbeats(tmp_path) -> None:
    with pytest.raises(ValueError, match="must exceed twice the heartbeat"):
        CellClaims(tmp_path, heartbeat=1.0, expiry=2.0)
