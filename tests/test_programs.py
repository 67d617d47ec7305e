"""The program database view: islands, elites, migration, parent choice, diversity."""

import random

from agent.config import SearchConfig
from agent.programs import Candidate, ProgramDB


def cand(commit, score, island=0, parent="base", valid=True, metrics=None, size=100):
    return Candidate(commit=commit, parent=parent, episode=0, island=island, score=score,
                     valid=valid, metrics=metrics or {}, code_size=size)


def make_db(direction="maximize"):
    db = ProgramDB(direction, SearchConfig(islands=2, elite_size=3))
    db.add(cand("base", 0.5, parent=None), baseline=True)
    return db


def test_baseline_joins_every_island_and_best_tracks_direction():
    db = make_db()
    assert [c.commit for c in db.elites(0)] == ["base"] == [c.commit for c in db.elites(1)]
    db.add(cand("a", 0.7, island=0))
    db.add(cand("b", 0.6, island=1))
    db.add(cand("bad", None, island=1, valid=False))
    assert db.best().commit == "a"
    assert [c.commit for c in db.elites(0)] == ["a", "base"]
    assert [c.commit for c in db.elites(1)] == ["b", "base"]
    low = ProgramDB("minimize", SearchConfig(islands=1))
    low.add(cand("x", 3.0))
    low.add(cand("y", 1.0))
    assert low.best().commit == "y"


def test_failures_are_invalid_or_worse_than_their_parent():
    db = make_db()
    db.add(cand("worse", 0.4))
    db.add(cand("broken", None, valid=False))
    db.add(cand("better", 0.9))
    assert [c.commit for c in db.recent_failures(5)] == ["broken", "worse"]


def test_migration_copies_each_islands_best_to_the_next():
    db = make_db()
    db.add(cand("a", 0.9, island=0))
    db.add(cand("b", 0.8, island=1))
    moves = db.migrate()
    assert ("a", 1) in moves and ("b", 0) in moves
    assert db.elites(1)[0].commit == "a"


def test_exploit_picks_elites_and_explore_picks_novel_behaviour():
    db = make_db()
    for i in range(10):  # a family of near-identical candidates
        db.add(cand(f"same{i}", 0.8 + i * 1e-3, metrics={"x": 1.0, "y": 1.0}))
    db.add(cand("odd", 0.55, metrics={"x": 50.0, "y": -30.0}))
    rng = random.Random(0)
    exploit = {db.sample_parent(0, rng, exploit_ratio=1.0).commit for _ in range(50)}
    assert exploit <= {c.commit for c in db.elites(0)}
    explore = [db.sample_parent(0, rng, exploit_ratio=0.0).commit for _ in range(20)]
    assert explore.count("odd") == 20


def test_inspirations_never_include_the_parent():
    db = make_db()
    for i in range(6):
        db.add(cand(f"c{i}", 0.6 + i / 100, metrics={"x": float(i)}))
    parent = db.best()
    picks = db.inspirations(parent, 0, random.Random(1), 3)
    assert len(picks) == 3
    assert parent.commit not in {c.commit for c in picks}


def test_explore_also_finds_a_different_code_structure():
    """Same behaviour, same size: the rewrite with loops and branches is the diverse one."""
    from agent.programs import code_shape

    tuned = code_shape(["A = 1.5\nB = 2\ndef f(x):\n    return A * x + B\n"])
    rewrite = code_shape(["def f(x):\n    for i in range(3):\n        if x > i:\n"
                          "            x = g(x) - i\n    return x\n"])
    assert tuned["loops"] == 0 and rewrite["loops"] == 1 and rewrite["branches"] == 1
    assert code_shape(["def broken(:\n"]) == dict.fromkeys(tuned, 0)
    db = make_db()
    for i in range(8):
        c = cand(f"tuned{i}", 0.8 + i / 1000, metrics={"x": 1.0}, size=100)
        c.code_shape = tuned
        db.add(c)
    other = cand("rewrite", 0.6, metrics={"x": 1.0}, size=100)
    other.code_shape = rewrite
    db.add(other)
    picks = [db.sample_parent(0, random.Random(k), exploit_ratio=0.0).commit for k in range(10)]
    assert picks.count("rewrite") == 10
