"""Fault test, run on the host as root: kill -9 a unit's main process and time until systemd has
started a new one and it answers HTTP with the expected status (no redirects followed), waiting
at most 150 s.

  kill_and_time.py UNIT HOST PORT PATH EXPECTED_STATUS [HOST_HEADER]

Prints one JSON object: unit, killed and new MainPID, NRestarts before and after, the seconds until
systemd started the new process (restarted_seconds) and until it answered (seconds), the status.
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import time


def show(unit, prop):
    return subprocess.run(["systemctl", "show", "-P", prop, unit],
                          capture_output=True, text=True, check=True).stdout.strip()


def answer(host, port, path, host_header):
    try:
        connection = http.client.HTTPConnection(host, port, timeout=2)
        connection.request("GET", path, headers={"Host": host_header or host})
        return connection.getresponse().status
    except OSError:
        return None


def main():
    unit, host, port, path, expected = sys.argv[1:6]
    host_header = sys.argv[6] if len(sys.argv) > 6 else ""
    killed = int(show(unit, "MainPID"))
    restarts = int(show(unit, "NRestarts"))
    if killed == 0:
        sys.exit(f"{unit} has no main process to kill")
    start = time.monotonic()
    os.kill(killed, signal.SIGKILL)
    status, new, restarted = None, 0, None
    while time.monotonic() - start < 150:
        new = int(show(unit, "MainPID"))
        if new not in (0, killed) and restarted is None:
            restarted = round(time.monotonic() - start, 1)
        status = answer(host, int(port), path, host_header) if restarted is not None else None
        if status == int(expected):
            break
        time.sleep(0.2)
    print(json.dumps({"unit": unit, "killed_pid": killed, "new_pid": new, "status": status,
                      "restarts_before": restarts, "restarts_after": int(show(unit, "NRestarts")),
                      "restarted_seconds": restarted,
                      "seconds": round(time.monotonic() - start, 1)}))


if __name__ == "__main__":
    main()
