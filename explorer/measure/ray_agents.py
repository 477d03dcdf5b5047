"""Ray targets: the measuring agent as Ray actors on the node of an existing cluster that offers a custom
resource (`ray start … --resources '{"pi": 1}'` on that node), for a target `ray:host:6379#pi` (the
cluster's address) or `ray://host:10001#pi` (through Ray Client).

The node needs only Ray and the agent's two packages, numpy and ai-edge-litert: the actor's class is
shipped by value and runs the agent's source (explorer.measure.agent), sent with it. Each of the pool's
processes is one actor, so a model's blocks run in distinct processes there, as here; RayAgents answers the
timing pool's calls (block, profile, facts, close), so the measurement protocol is the same code.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

from explorer.measure import agent, pool

# The actor, compiled into a module of its own that no node can import, so Ray ships it by value.
ACTOR = '''
class Agent:
    def __init__(self, source):
        self.agent = {"__name__": "explorer_agent"}
        exec(compile(source, "explorer-agent", "exec"), self.agent)
        self.held = {}

    def facts(self):
        import ray

        return {**self.agent["facts"](), "ray_node": ray.get_runtime_context().get_node_id()}

    def profile(self, models, raw, shape, dtype, params):
        import numpy as np

        self.agent["pin"](params.get("core"))
        image = np.frombuffer(raw, dtype=dtype).reshape(shape)
        return self.agent["prefix_medians"](models, image, params["threads"], params["rounds"], params["runs"],
                                            params["warmup"])

    def block(self, sha, payload, params):
        import numpy as np

        if payload is not None:
            model, raw, shape, dtype = payload
            self.held = {sha: (model, np.frombuffer(raw, dtype=dtype).reshape(shape))}
        model, image = self.held[sha]
        self.agent["pin"](params.get("core"))
        invoke = self.agent["ready"](model, image, params["threads"], params["xnnpack"], params["warmup"])
        return np.asarray(self.agent["timed_runs"](invoke, params["runs"], params["seconds"], params["max_seconds"]),
                          dtype=np.int64)
'''


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """ConnectionError unless something listens at a host:port address (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a cluster address is host:port or ray://host:port (got {address!r})")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc.strerror or exc})") from exc


class RayAgents:
    """`size` agent actors on the nodes that offer `resource`, answering as a TimingPool does."""

    def __init__(self, address: str, resource: str, size: int = pool.SIZE, timeout_s: float = 120.0):
        import ray

        if not ray.is_initialized():
            reachable(address)
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if ray.cluster_resources().get(resource, 0) <= 0:
            raise pool.AgentError(f"no node of the cluster at {address} offers the resource {resource!r} "
                                  f"(start it with: ray start --address … --resources '{{\"{resource}\": 1}}')")
        namespace = {"__name__": "explorer_ray_agent"}
        exec(compile(ACTOR, "explorer-ray-agent", "exec"), namespace)
        actor = ray.remote(num_cpus=0, resources={resource: 0.001}, max_restarts=0)(namespace["Agent"])
        source = Path(agent.__file__).read_text()
        self.size, self.timeout_s = size, timeout_s
        self._actors = [actor.remote(source) for _ in range(size)]
        self._held: list[str | None] = [None] * size

    def _get(self, ref):
        import ray

        try:
            return ray.get(ref, timeout=self.timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            raise pool.AgentError(f"the node did not answer within {self.timeout_s:.0f} s") from exc
        except ray.exceptions.RayError as exc:
            raise pool.AgentError(f"the agent on the node failed: {str(exc).strip().splitlines()[-1]}") from exc

    def facts(self) -> dict:
        return self._get(self._actors[0].facts.remote())

    def block(self, i: int, payload: pool.Payload, params: dict) -> np.ndarray:
        j = i % self.size
        send = None if self._held[j] == payload.sha else (payload.model, payload.image_bytes,
                                                           list(payload.image.shape), str(payload.image.dtype))
        samples = self._get(self._actors[j].block.remote(payload.sha, send, params))
        self._held[j] = payload.sha
        return samples.astype(np.float64) / 1e3

    def profile(self, models: list[bytes], image: np.ndarray, params: dict) -> list[list[float]]:
        raw = np.ascontiguousarray(image).tobytes()
        return self._get(self._actors[0].profile.remote(models, raw, list(image.shape), str(image.dtype), params))

    def close(self) -> None:
        import ray

        if ray.is_initialized():  # (after ray.shutdown its actors are gone already)
            for a in self._actors:
                ray.kill(a)
        self._actors, self._held = [], []
