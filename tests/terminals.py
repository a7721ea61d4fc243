"""Real terminals for tests of the ranking app: a tmux window, and a bare pty that never answers."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
import time


class Tmux:
    """A tmux server of our own (its own socket), with one window of the given size."""

    def __init__(self, command: str, width: int = 160, height: int = 48):
        self.socket = f"rewardsmith-test-{os.getpid()}-{time.monotonic_ns()}"
        self._tmux("new-session", "-d", "-s", "rank", "-x", str(width), "-y", str(height), command)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "rank")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "rank", key)

    def wait_for(self, *texts: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {texts} on the screen:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


def run_in_silent_pty(argv: list[str], ready: bytes, keys: bytes, cwd=None, rows: int = 40, cols: int = 120,
                      timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` on a pty that reports its size in cells but not in pixels and never answers an
    escape sequence (as a bare serial console or some SSH clients); type ``keys`` once ``ready``
    was printed. Returns the exit code and everything printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, start_new_session=True,
                            env={**os.environ, "TERM": "xterm-256color"})
    os.close(slave)
    out = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its side
                return
            if not data:
                return
            out.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while ready not in out and proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {ready!r}:\n{bytes(out).decode(errors='replace')[-3000:]}")
            time.sleep(0.2)
        time.sleep(0.5)
        if proc.poll() is None:
            os.write(master, keys)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        os.close(master)
    return code, bytes(out).decode(errors="replace")
