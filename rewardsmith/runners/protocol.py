"""What the host and the guest (the worker inside a sandbox) agree on: how the guest is started,
the files of a job folder, the marker lines on its output and a warm worker's control messages.
Both sides import this module and nothing else of each other; it imports only the standard library.

A job folder (``/job`` inside the sandbox)::

    job.json        the WorkerJob (written by the host)
    reward.py       the candidate's code (check and train jobs only)
    policy.pt       the trained policy (written by a train job; copied in for an evaluate job)
    outcome.json    a train job's WorkerOutcome (untrusted: it ran the reward)
    rollout.json    one recorded episode of the trained policy (RolloutTrace, untrusted)
    frames.npy      that episode's raw pixels; the host encodes the videos
    go              written by the host: an evaluate job started ahead may load its policy
    experience_in.json, experience_in.f32    SAC: transitions of earlier candidates (written by the host)
    experience_out.json, experience_out.f32  SAC: the transitions this job collected (untrusted)
    tmp/            the job's temporary files
"""

from __future__ import annotations

import array
import json
import os
import socket

GUEST_MODULE = "rewardsmith.runners.guest"
WARM_MODULE = "rewardsmith.runners.warm_guest"  # a warm worker: forks a guest for every job
KINDS = ("check", "train", "evaluate")

JOB_FILE = "job.json"
REWARD_FILE = "reward.py"
POLICY_FILE = "policy.pt"
OUTCOME_FILE = "outcome.json"
TRACE_FILE = "rollout.json"
FRAMES_FILE = "frames.npy"
GO_FILE = "go"
EXPERIENCE_IN = "experience_in"    # stems: rewardsmith.experience adds .json and .f32
EXPERIENCE_OUT = "experience_out"
TMP_DIR = "tmp"

PROGRESS = "@@progress "          # + JSON: training progress
RESULT = "@@result "              # + JSON: the job's result (the last such line counts)
POLICY_SAVED = "@@policy-saved"   # the train job saved its policy; the host may start evaluating
# Everything a guest prints before REWARD_LOADING comes from rewardsmith's own code, so the host
# may trust it: ENV_ERROR then means the sandbox cannot build the task's env (a package or
# library missing there), which is not the reward's fault.
ENV_ERROR = "@@environment-error "  # + JSON {"error": ...}
REWARD_LOADING = "@@reward-loading"  # the reward's code runs from here on


def guest_argv(python: str, kind: str, job_path: str) -> list[str]:
    """The guest's command line. ``-I`` (isolated mode): the job folder is writable by reward
    code, so it must never be on ``sys.path`` (a planted torch.py there would be imported)."""
    return [python, "-I", "-m", GUEST_MODULE, kind, job_path]


# A warm worker's control socket (unix SOCK_SEQPACKET): one JSON message per packet, descriptors
# passed along with SCM_RIGHTS.
MAX_MESSAGE = 1 << 16


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """The next message and the descriptors that came with it; ``(None, [])`` when the peer is gone."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)
