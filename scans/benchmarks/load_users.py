"""The simulated users of ``bench load``, run in a process of their own so that they never share a
GIL with the server side.

The process is spawned (``bench load`` serves the lab from an event-loop thread, whose locks a
forked child could inherit), so it imports this module afresh: the standard library only, as
Django is not set up there.
"""

from __future__ import annotations

import http.client
import random
import threading
import time


def run(plan, pipe) -> None:
    """The users' requests for ``plan["seconds"]``, each user a thread; sends the results down ``pipe``."""
    results: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + plan["seconds"]

    def user(index: int) -> None:
        rng = random.Random(index)
        me = plan["users"][index]
        conn = http.client.HTTPConnection("127.0.0.1", plan["port"], timeout=10)
        time.sleep(rng.uniform(0, plan["think"][1]))  # users do not all arrive in the same millisecond
        while time.monotonic() < stop_at:
            name, kind, path, headers = rng.choice(rng.choice(plan["requests"]))
            headers = dict(headers)
            if kind == "api":
                headers["Authorization"] = f"Bearer {me['token']}"
            else:
                headers["Cookie"] = f"sessionid={me['cookie']}"
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", plan["port"], timeout=10)
            with lock:
                results.append((name, (time.perf_counter() - started) * 1000, status))
            time.sleep(rng.uniform(*plan["think"]))
        conn.close()

    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(plan["users"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipe.send(results)
