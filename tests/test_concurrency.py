"""Slot accounting: 200 jobs on 2 slots never run more than 2 at once."""
import os

N_JOBS = 200


def max_overlap(intervals):
    events = []
    for s, e in intervals:
        events.append((s, 1))
        events.append((e, -1))
    # at equal times an end comes before a start
    events.sort(key=lambda ev: (ev[0], ev[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_max_overlap_unit():
    assert max_overlap([(0, 1), (1, 2)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 4)]) == 3
    assert max_overlap([(0, 2), (1, 3), (2.5, 4)]) == 2


def test_200_jobs_on_2_slots(ferry):
    d = ferry.path("ts")
    os.makedirs(d)
    bulk = ferry.path("bulk.txt")
    with open(bulk, "w") as f:
        for i in range(N_JOBS):
            f.write(f"sh -c 'date +%s.%N >> {d}/{i}.start; sleep 0.05; "
                    f"date +%s.%N >> {d}/{i}.end'\n")
    ids = [int(x) for x in ferry.run("submit", "--bulk", bulk, timeout=60).stdout.split()]
    assert len(ids) == N_JOBS and len(set(ids)) == N_JOBS
    cp = ferry.run("wait", "--all", "--timeout", "150", timeout=170)
    assert cp.returncode == 0
    jobs = ferry.json("jobs")
    assert len(jobs) == N_JOBS
    bad = [(j["id"], j["status"], j["exit_value"]) for j in jobs
           if j["status"] != "done" or j["exit_value"] != 0]
    assert not bad, f"jobs not done: {bad[:10]}"
    intervals = []
    for i in range(N_JOBS):
        with open(f"{d}/{i}.start") as f:
            starts = f.read().split()
        with open(f"{d}/{i}.end") as f:
            ends = f.read().split()
        assert len(starts) == 1 and len(ends) == 1, f"job {i} ran {len(starts)} times"
        s, e = float(starts[0]), float(ends[0])
        assert e >= s + 0.04
        intervals.append((s, e))
    m = max_overlap(intervals)
    assert m <= 2, f"{m} jobs ran at once on 2 slots"
    assert m == 2, "the 2 slots were never used together"
    # the engine's own records agree: started/ended times never overlap by 3
    recs = [(j["started_at"], j["ended_at"]) for j in jobs]
    assert all(s is not None and e is not None and s <= e for s, e in recs)
    assert max_overlap(recs) <= 2, "the engine's started_at/ended_at show more than 2 at once"
