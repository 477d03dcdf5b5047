"""The job queue on its own (no TensorFlow, no worker): joining, withdrawing, claiming, reaping."""

import os
import subprocess
import sys

import pytest

from explorer.run.queue import Queue


@pytest.fixture
def queue(tmp_path):
    return Queue(tmp_path / "jobs.sqlite3")


def test_asking_for_a_live_job_joins_it(queue):
    a = queue.submit("build", "k1", "v1", {"spec": 1}, "alice")
    b = queue.submit("build", "k1", "v1", {"spec": 1}, "bob")
    assert a.id == b.id and b.requesters == ("alice", "bob")
    other = queue.submit("build", "k2", "v2", {"spec": 2}, "bob")
    assert other.id != a.id
    assert [j.key for j in queue.jobs(("queued",))] == ["k1", "k2"]


def test_withdrawing_cancels_only_when_nobody_waits(queue):
    job = queue.submit("build", "k1", "v1", {}, "alice")
    queue.submit("build", "k1", "v1", {}, "bob")
    assert queue.withdraw(job.id, "alice").state == "queued"  # bob still waits
    assert queue.wanted(job.id)
    after = queue.withdraw(job.id, "bob")
    assert after.state == "cancelled" and not queue.wanted(job.id)
    again = queue.submit("build", "k1", "v1", {}, "carol")  # a later visitor gets a fresh job
    assert again.id != job.id and again.state == "queued" and again.requesters == ("carol",)


def test_a_running_job_is_stopped_by_its_worker_not_by_withdraw(queue):
    job = queue.submit("build", "k1", "v1", {}, "alice")
    assert queue.claim(("build",), os.getpid()).id == job.id
    assert queue.withdraw(job.id, "alice").state == "running"  # the worker sees wanted() == False
    assert not queue.wanted(job.id)


def test_claim_takes_the_oldest_of_its_kind_once(queue):
    queue.submit("measure", "m1", "m1", {}, "x")
    first = queue.submit("build", "k1", "v1", {}, "x")
    queue.submit("build", "k2", "v2", {}, "x")
    assert queue.claim(("build",), 1).id == first.id
    assert queue.claim(("build",), 1).key == "k2"
    assert queue.claim(("build",), 1) is None
    assert queue.claim(("measure",), 1).key == "m1"


def test_finish_records_done_and_progress_only_while_running(queue):
    job = queue.submit("build", "k1", "v1", {}, "x")
    queue.progress(job.id, "train", 0.5, "half")
    assert queue.get(job.id).stage == "queued"  # not claimed: progress is ignored
    queue.claim(("build",), os.getpid())
    queue.progress(job.id, "train", 0.5, "half")
    assert (queue.get(job.id).stage, queue.get(job.id).fraction) == ("train", 0.5)
    queue.finish(job.id, "done", "ok")
    done = queue.get(job.id)
    assert done.state == "done" and done.fraction == 1.0 and not done.live
    with pytest.raises(ValueError):
        queue.finish(job.id, "running", "no")


def test_a_dead_workers_running_job_is_reaped_as_failed_with_its_stage(queue):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    queue.register_worker(proc.pid)
    job = queue.submit("build", "k1", "v1", {}, "x")
    queue.claim(("build",), proc.pid)
    queue.progress(job.id, "train", 0.4, "epoch 2/5")
    assert queue.reap() == [] and queue.get(job.id).state == "running"  # alive: left alone
    proc.kill()
    proc.wait()
    reaped = queue.reap()
    assert [j.id for j in reaped] == [job.id]
    failed = queue.get(job.id)
    assert failed.state == "failed" and f"pid {proc.pid}" in failed.message and "'train' (40%)" in failed.message
    assert queue.live_workers() == []


def test_a_live_worker_keeps_its_job_when_its_heartbeat_looks_old_and_a_reused_pid_is_not_it(queue):
    import sqlite3

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        queue.register_worker(proc.pid)
        job = queue.submit("build", "k1", "v1", {}, "x")
        queue.claim(("build",), proc.pid)
        with sqlite3.connect(queue.path) as db:  # the wall clock stepped an hour ahead (or the machine slept)
            db.execute("UPDATE workers SET heartbeat = heartbeat - 3600")
        assert queue.reap() == [] and queue.get(job.id).state == "running"
        assert queue.live_workers() == [proc.pid]
        with sqlite3.connect(queue.path) as db:  # its row went (as an older reaper dropped silent workers)
            db.execute("DELETE FROM workers")
        queue.heartbeat(proc.pid)
        assert queue.live_workers() == [proc.pid]  # its next heartbeat registered it again
        with sqlite3.connect(queue.path) as db:  # the pid now names a process that started at another time
            db.execute("UPDATE workers SET proc_start = proc_start - 1")
        assert [j.id for j in queue.reap()] == [job.id] and queue.live_workers() == []
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_that_registers_and_claims_while_a_reaper_runs_keeps_its_job(queue, monkeypatch):
    """A reaper runs (every page view, every progress poll) while a worker starts: it registers, then claims. Who is
    alive must be read under the reaper's write lock, or the new worker's first job is failed as a dead one's."""
    import threading

    from explorer import process

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    job = queue.submit("build", "k", "v", {}, "x")

    def start_worker():
        queue.register_worker(proc.pid)
        queue.claim(("build",), proc.pid)

    starter = threading.Thread(target=start_worker)
    real = process.alive

    def alive(pid):  # the worker starts while the reaper reads who is alive (as on a busy machine)
        if not starter.is_alive() and starter.ident is None:
            starter.start()
            starter.join(timeout=1)  # under the reaper's write lock it cannot register until the reaper is done
        return real(pid)

    monkeypatch.setattr(process, "alive", alive)
    queue.register_worker(os.getpid())  # a row to read: the reaper checks it
    try:
        reaped = queue.reap()
        starter.join()
        assert reaped == [] and queue.get(job.id).state == "running" and queue.get(job.id).worker_pid == proc.pid
        assert queue.reap() == []
    finally:
        proc.kill()
        proc.wait()


def test_a_queue_from_before_process_start_times_gets_the_column(tmp_path):
    import sqlite3

    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE workers (pid INTEGER PRIMARY KEY, started REAL NOT NULL, heartbeat REAL NOT NULL)")
        db.execute("INSERT INTO workers VALUES (?, 0, 0)", (os.getpid(),))  # registered long ago, by old code
    old = Queue(path)
    assert old.live_workers() == []  # no start time: judged by its heartbeat, an old one
    old.register_worker(os.getpid())
    assert old.live_workers() == [os.getpid()]


def test_many_measurements_are_queued_in_one_go_without_duplicates(queue):
    items = [(f"k{i}", f"v{i}", {"force": False}) for i in range(5)]
    assert queue.submit_many("measure", items, "page") == 5
    assert queue.submit_many("measure", items, "page") == 0
    assert queue.count_live("measure") == 5


def test_background_jobs_wait_for_asked_ones_and_can_be_held_back(queue):
    queue.submit_many("measure", [("bg1", "bg1", {}), ("bg2", "bg2", {})], "page", priority=0)
    asked = queue.submit("measure", "asked", "asked", {}, "alice")
    assert queue.claim(("measure",), 1, min_priority=1).id == asked.id  # a build runs: only asked-for work
    assert queue.claim(("measure",), 1, min_priority=1) is None
    joined = queue.submit("measure", "bg2", "bg2", {}, "bob")  # somebody now waits for it: it is promoted
    assert queue.claim(("measure",), 1, min_priority=1).id == joined.id
    assert queue.claim(("measure",), 1).key == "bg1"
