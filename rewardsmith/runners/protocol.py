"""What the host and the guest (the worker inside a sandbox) agree on: how the guest is started,
the files of a job folder, the marker lines on its output and a warm worker's control messages.
Both sides import this module and nothing else of each other; it imports only the standard library.

A job folder (``/job`` inside the sandbox)::

    job.json        the WorkerJob (written by the host)
    reward.py       the candidate's code (check, train and score jobs only)
    policy.pt       the trained policy (written by a train job; copied in for an evaluate job)
    init.pt         train: the policy to start from (a warm start; copied in by the host)
    outcome.json    a train job's WorkerOutcome (untrusted: it ran the reward)
    episodes.npz    evaluate: the episodes it recorded (states, actions, fitness); check and
                    score: the stored episodes to score the reward on (written by the host)
    video.npz       evaluate: the video's episode (states and actions)
    video.json      its timing (frame steps, fps); frames.npy: its raw pixels
    scores.npz      score: the reward and its components at every step (untrusted)
    go              written by the host: a job started ahead may go on (its policy or episodes
                    are in place)
    experience_in.json, experience_in.f32    SAC: transitions of earlier candidates (written by the host)
    experience_out.json, experience_out.f32  SAC: the transitions this job collected (untrusted)
    shared_out/     SAC, live sharing: NNNNNN.f32 then NNNNNN.json, the transitions this job
                    collected since its last exchange (untrusted; the host reads, checks and
                    passes them on)
    shared_in/      SAC, live sharing: SENDER-NNNNNN.f32/.json, transitions of the candidates
                    training at the same time (written by the host while the job runs)
    tmp/            the job's temporary files
"""

from __future__ import annotations

import array
import json
import os
import socket

GUEST_MODULE = "rewardsmith.runners.guest"
WARM_MODULE = "rewardsmith.runners.warm_guest"  # a warm worker: forks a guest for every job
KINDS = ("check", "train", "evaluate", "score")

JOB_FILE = "job.json"
REWARD_FILE = "reward.py"
POLICY_FILE = "policy.pt"
INIT_POLICY_FILE = "init.pt"
OUTCOME_FILE = "outcome.json"
TRACE_FILE = "rollout.json"
FRAMES_FILE = "frames.npy"
EPISODES_FILE = "episodes.npz"
VIDEO_FILE = "video.npz"
VIDEO_INFO_FILE = "video.json"
SCORES_FILE = "scores.npz"
GO_FILE = "go"
EXPERIENCE_IN = "experience_in"    # stems: rewardsmith.experience adds .json and .f32
EXPERIENCE_OUT = "experience_out"
SHARED_OUT = "shared_out"          # folders of live sharing between running SAC candidates
SHARED_IN = "shared_in"
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
