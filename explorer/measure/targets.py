"""Measurement targets: named places where latency is measured, each through a transport to its agent.

A target is `local` (this machine's worker, the default), `ssh://[user@]host[:port]` (the system ssh, with
the user's keys and ~/.ssh/config; no password is ever stored), `adb://SERIAL` (an Android device: LiteRT's
benchmark_model binary there, explorer.measure.adb), `ray:host:port#RESOURCE` (the node of a Ray cluster
that offers that custom resource, explorer.measure.ray_agents), or `command:<words>`: any command that
runs a shell command string on the target the way ssh does (`docker exec -i NAME sh -c`, or `sh -c` for
this machine, which is how the tests reach a fresh virtual environment through the same code path).
Nothing is passed through a local shell: the transport's words are an argv, and the one string the remote
shell sees is built here, quoted, from the target's python and the agent's bootstrap.

On the target, the agent (explorer.measure.agent: numpy and ai-edge-litert only) is sent as source on
stdin; each of the timing pool's processes is one connection. The per-op profile's prefixes are cut here
and timed there, round-robin in one of its processes. Its records are filed under the target's
own host id, from the facts its agent reports, exactly like a host's here.
"""

from __future__ import annotations

import atexit
import json
import re
import shlex
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from explorer.measure import adb, agent, host, measure, pool, profile, resident
from explorer.record import Latency
from explorer.store import paths

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SSH = re.compile(r"^ssh://(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]{0,63})@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252})"
                 r"(?::(?P<port>[0-9]{1,5}))?$")
RAY = re.compile(r"^ray:(?P<client>//)?(?P<hostport>[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5})"
                 r"#(?P<resource>[A-Za-z_][A-Za-z0-9_-]{0,63})$")
PYTHON = re.compile(r"^[A-Za-z0-9_./+-]{1,200}$")
LOCAL = "local"


class TargetError(ValueError):
    """A target that cannot be added or reached; the message says why."""


@dataclass(frozen=True)
class Target:
    name: str
    address: str  # local, ssh://[user@]host[:port], adb://SERIAL, ray:host:port#RESOURCE or command:<words>
    python: str = "python3"  # the target's interpreter, with ai-edge-litert and numpy (ssh, command)
    facts: dict | None = field(default=None, compare=False)  # its agent's answer when last checked
    binary: str = adb.DEVICE_DIR + "/benchmark_model"  # LiteRT's benchmark tool on an Android device (adb)

    @property
    def host(self) -> host.Host:
        """The machine its records are filed under (this one for local; else from its last check)."""
        if self.is_local:
            return host.current()
        if self.facts is None:
            raise TargetError(f"target {self.name} has not been reached yet: 'python -m explorer targets check "
                              f"{self.name}'")
        return host.from_facts(self.facts)

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise TargetError(f"target name {self.name!r}: use 1-40 lower-case letters, digits, '-' or '_'")
        for what, value in (("python", self.python), ("binary", self.binary)):
            if not PYTHON.match(value):
                raise TargetError(f"{what} {value!r}: a path or command name without spaces or shell characters")
        if self.is_adb:
            if not adb.SERIAL.match(self.serial):
                raise TargetError(f"{self.address}: adb://SERIAL, the serial 'adb devices' lists")
        elif self.is_ray:
            self.ray_node()
        else:
            self.prefix()  # checks the address

    @property
    def is_local(self) -> bool:
        return self.address == LOCAL

    @property
    def is_adb(self) -> bool:
        return self.address.startswith("adb://")

    @property
    def serial(self) -> str:
        return self.address[len("adb://"):]

    @property
    def is_ray(self) -> bool:
        return self.address.startswith("ray:")

    def ray_node(self) -> tuple[str, str]:
        """(the cluster's address, the custom resource its node offers) of ray:host:port#R or ray://host:port#R."""
        m = RAY.match(self.address)
        if not m:
            raise TargetError(f"{self.address}: ray:host:6379#RESOURCE, or ray://host:10001#RESOURCE through Ray "
                              "Client (RESOURCE: the custom resource the node was started with)")
        return ("ray://" if m["client"] else "") + m["hostport"], m["resource"]

    def prefix(self) -> tuple[str, ...]:
        """The transport's argv, to which the remote command string is appended as one word."""
        if self.is_local:
            return ()
        m = SSH.match(self.address)
        if m:
            port = int(m["port"] or 22)
            if not 0 < port < 65536:
                raise TargetError(f"{self.address}: port {port} is not a TCP port")
            login = f"{m['user']}@{m['host']}" if m["user"] else m["host"]
            return ("ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", str(port), "--", login)
        if self.address.startswith("command:"):
            words = shlex.split(self.address[len("command:"):])
            if not words:
                raise TargetError(f"{self.address}: name the command (e.g. command:docker exec -i NAME sh -c)")
            return tuple(words)
        raise TargetError(f"{self.address!r}: a target is local, ssh://[user@]host[:port], adb://SERIAL, "
                          "ray:host:port#RESOURCE or command:<words>")

    def pool(self, size: int = pool.SIZE) -> pool.TimingPool:
        """Timing processes on the target: each runs the agent's source, sent first, through the transport
        (on a Ray node: actors, explorer.measure.ray_agents)."""
        if self.is_local:
            return pool.TimingPool(size)
        if self.is_ray:
            from explorer.measure.ray_agents import RayAgents

            try:
                return RayAgents(*self.ray_node(), size=size)
            except (ConnectionError, ValueError) as exc:
                raise pool.AgentError(str(exc)) from exc
        source = Path(agent.__file__).read_bytes()
        remote = shlex.join([self.python, "-c", agent.BOOTSTRAP, str(len(source)), "--serve"])
        return pool.TimingPool(size, (*self.prefix(), remote), preamble=source)


def check(target: Target) -> dict:
    """The target's facts, from its agent (TargetError with the reason when it cannot be reached)."""
    if target.is_adb:
        try:
            return adb.facts(target.serial, target.binary)
        except adb.AdbError as exc:
            raise TargetError(f"target {target.name}: {exc}") from exc
    timing = None
    try:
        timing = target.pool(size=1)
        facts = timing.facts()
    except pool.AgentError as exc:
        raise TargetError(f"target {target.name}: {_reason(str(exc))}") from exc
    finally:
        if timing is not None:
            timing.close()
    if facts["versions"].get("ai-edge-litert") in (None, "unknown"):
        raise TargetError(f"target {target.name}: ai-edge-litert is not installed for {target.python} there "
                          "(pip install ai-edge-litert numpy)")
    return facts


def _reason(text: str) -> str:
    """A transport's failure in a user's words, with what it said."""
    low = text.lower()
    for needle, why in (("no module named 'ai_edge_litert'", "ai-edge-litert is not installed for its python"),
                        ("no module named 'numpy'", "numpy is not installed for its python"),
                        ("connection refused", "the connection was refused"),
                        ("could not resolve hostname", "its host name does not resolve"),
                        ("permission denied", "ssh refused the login (keys?)"),
                        ("not found", "a command was not found")):
        if needle in low:
            return f"{why} ({text})"
    return text


def measure_latency(target: Target, model: bytes, images: np.ndarray, threads: int = 1, **kwargs) -> Latency:
    """A model's latency on the target, by the same blocked protocol as here (its agent pinned to its last
    core where its OS allows), filed under the target's host: its facts, not this machine's."""
    if target.is_local:
        raise TargetError("the local target is measured by the worker (explorer.run.pipeline)")
    if target.is_adb:
        try:
            facts = target.facts or check(target)  # (refreshed by 'targets check' and 'measure --target')
            timed = adb.latency(target.serial, target.binary, model, threads)
        except adb.AdbError as exc:
            raise TargetError(f"target {target.name}: {exc}") from exc
        return Latency.from_measurement(timed, _context(target, facts, threads),
                                        rss_note="benchmark_model does not report resident memory")
    try:
        timing = _pool_of(target)
        facts = timing.facts()
        timed = measure.latency(model, images, threads=threads, timing=timing, core="last", **kwargs)
        by_op = profile.profile(model, images[0], threads, timing=timing, model_us=timed["p50_us"])
    except pool.AgentError as exc:
        _drop(target)
        raise TargetError(f"target {target.name}: {_reason(str(exc))}") from exc
    rss, rss_note = resident.increase(lambda: target.pool(size=1), model, images[0], threads)
    return Latency.from_measurement(timed, _context(target, facts, threads),
                                    ops=[asdict(o) for o in by_op.ops], ops_total_us=by_op.total_us,
                                    rss_increase_bytes=rss, rss_note=_reason(rss_note) if rss_note else "")


_pools: dict[Target, pool.TimingPool] = {}  # reused across models, as this machine's pool is


def _pool_of(target: Target) -> pool.TimingPool:
    if target not in _pools:
        if not _pools:
            atexit.register(lambda: [_drop(t) for t in list(_pools)])
        _pools[target] = target.pool()
    return _pools[target]


def _drop(target: Target) -> None:
    timing = _pools.pop(target, None)
    if timing is not None:
        timing.close()


def _context(target: Target, facts: dict, threads: int) -> dict:
    """Where and how a target's measurement was taken (the host its record is filed under)."""
    return {"host": host.from_facts(facts).to_dict(), "hostname": facts["hostname"], "threads": threads,
            "versions": facts["versions"], "python": facts["python"], "target": target.name,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# -- the user's targets (one file in the user-data folder; this module reads and writes it) -------------
def _file() -> Path:
    return paths.state_dir() / "targets.json"


def load() -> dict[str, Target]:
    """The user's targets by name, `local` first (always there)."""
    try:
        stored = json.loads(_file().read_text()).get("targets", [])
    except FileNotFoundError:
        stored = []
    except ValueError as exc:
        raise TargetError(f"{_file()} is not valid JSON ({exc}): fix or remove it") from exc
    out = {LOCAL: Target(LOCAL, LOCAL)}
    for t in stored:
        out[t["name"]] = Target(t["name"], t["address"], t.get("python", "python3"), t.get("facts"),
                                t.get("binary", Target.binary))
    return out


def _save(targets: dict[str, Target]) -> None:
    from explorer.store.cache import write_json_atomic

    _file().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(_file(), {"targets": [asdict(t) for n, t in targets.items() if n != LOCAL]})


def add(target: Target) -> Target:
    """Reach the target's agent, then keep the target with its facts (nothing is kept if it cannot be reached)."""
    targets = load()
    if target.name in targets:
        raise TargetError(f"there is a target named {target.name} already (remove it first)")
    checked = replace(target, facts=check(target))
    _save({**targets, target.name: checked})
    return checked


def refresh(name: str) -> Target:
    """Check a target again and keep its new facts (a new OS or LiteRT on the device: a new host id)."""
    targets = load()
    target = get(name)
    if target.is_local:
        return target
    checked = replace(target, facts=check(target))
    _save({**targets, name: checked})
    return checked


def remove(name: str) -> None:
    targets = load()
    if name == LOCAL or name not in targets:
        raise TargetError(f"no target named {name!r} to remove" if name != LOCAL else "the local target stays")
    del targets[name]
    _save(targets)


def get(name: str) -> Target:
    targets = load()
    if name not in targets:
        raise TargetError(f"no target named {name!r}: add it with 'python -m explorer targets add'")
    return targets[name]
