"""Scripted answers for the fake LLM server, by role (designer, critic, analyzer, vlm, preflight).

Each role has a queue of answers (text, an HTTP status to fail with, or a function of the
request); when a queue runs dry the role's default answers. The role is read from the system
prompt, which rewardsmith's templates start with a fixed sentence.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque

from fake_llm_server import Received


def role_of(request: Received) -> str:
    system = request.system
    if system.startswith("You are a reward designer"):
        return "fix" if sum(m["role"] == "assistant" for m in request.messages) else "designer"
    if system.startswith("You are a reward critic"):
        return "critic"
    if system.startswith("You are a trajectory analyzer"):
        return "analyzer"
    if system.startswith("You are a judge of what trained policies do"):
        return "vlm_fix" if sum(m["role"] == "assistant" for m in request.messages) else "vlm"
    if "Reply with the single word OK" in request.last_user:
        return "preflight"
    return "unknown"


def fenced(code: str, note: str = "Here is the reward.") -> str:
    return f"{note}\n\n```python\n{code.strip()}\n```\n"


# ---- CartPole rewards -----------------------------------------------------------------------
PRODUCT = '''
import torch

def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor):
    upright = torch.exp(-pole_angle.abs() / 0.2)
    centered = torch.exp(-cart_pos.abs() / 2.4)
    return upright * centered, {"upright": upright, "centered": centered}
'''
# the same ranking of states as PRODUCT (twice the value): a near-duplicate
PRODUCT_SCALED = '''
import torch

def compute_reward(cart_pos: torch.Tensor, pole_angle: torch.Tensor):
    balance = torch.exp(-pole_angle.abs() / 0.2) * torch.exp(-cart_pos.abs() / 2.4)
    return 2.0 * balance, {"balance": balance}
'''
WEIGHTED_SUM = '''
import torch

def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor, pole_vel: torch.Tensor):
    upright = torch.exp(-pole_angle.abs() / 0.15)
    centered = torch.exp(-cart_pos.abs())
    calm = torch.exp(-pole_vel.abs())
    return upright + 0.3 * centered + 0.2 * calm, {"upright": upright, "centered": centered, "calm": calm}
'''
UNKNOWN_ARGUMENT = '''
import torch

def compute_reward(pole_angel: torch.Tensor):
    upright = torch.exp(-pole_angel.abs())
    return upright, {"upright": upright}
'''
WRONG_SHAPE = '''
import torch

def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs()).unsqueeze(-1)
    return upright, {"upright": upright}
'''
# the LLM critic is scripted to veto this one (it rewards the pole for falling)
WRONG_SIGN = '''
import torch

def compute_reward(pole_angle: torch.Tensor):
    tilt = pole_angle.abs()  # WRONG SIGN
    return tilt, {"tilt": tilt}
'''
# what screening turns away without training (tests/test_screening.py, benchmarks/solve_cost.py):
# the product above with its sign flipped: it pays for the pole falling (an episode that ends soon
# costs least)
PAYS_FOR_FALLING = '''
import torch

def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor):
    upright = torch.exp(-pole_angle.abs() / 0.2)
    centered = torch.exp(-cart_pos.abs() / 2.4)
    return -(upright * centered), {"upright": upright, "centered": centered}
'''
# the same on every state: nothing to learn from
CONSTANT = '''
import torch

def compute_reward(pole_angle: torch.Tensor):
    zero = torch.zeros_like(pole_angle)
    return zero, {"nothing": zero}
'''
# ignores the pole, the goal: pays for a still cart
GOAL_IGNORING = '''
import torch

def compute_reward(cart_vel: torch.Tensor, action: torch.Tensor):
    still = torch.exp(-cart_vel.abs())
    return still, {"still": still}
'''


def shown_candidates(request: Received) -> list[int]:
    """The candidates a VLM request shows, as its text names them ("Candidate 3:" before each image)."""
    return [int(n) for n in re.findall(r"Candidate (\d+):", request.text)]


def vlm_ranking(order: list[int], note: str = "VLM-REASON") -> str:
    """A VLM's answer ranking ``order`` (best first), with a reason per candidate that names it."""
    reasons = {str(i): f"{note} {i}: the pole {'stays upright' if k == 0 else 'tilts'} (place {k + 1})."
               for k, i in enumerate(order)}
    body = json.dumps({"best": order[0], "worst": order[-1], "order": order, "reasons": reasons})
    return f"Having watched the episodes:\n```json\n{body}\n```"


def vlm_default(request: Received) -> str:
    """The scripted VLM: it prefers the highest-numbered candidate (not the fitness's choice)."""
    return vlm_ranking(sorted(shown_candidates(request), reverse=True))


NO_CODE = "I would reward the agent for keeping the pole upright and the cart near the centre."

ACCEPT = '{"verdict": "accept", "reasons": []}'
REJECT_SIGN = '{"verdict": "reject", "reasons": ["the reward grows as the pole tilts: it rewards falling"]}'
ANALYSIS = ("- ANALYZER-NOTE: the policy keeps the pole near upright; episodes end by the time limit.\n"
            "- Suggestion: keep the upright term; the centring term hardly matters.")


class Script:
    """The responder for :class:`FakeLLMServer`; records what each role was asked."""

    def __init__(self, **queues):
        self.queues = {role: deque(items) for role, items in queues.items()}
        self.asked: dict[str, list[Received]] = {}
        self.lock = threading.Lock()

    def default(self, role: str, request: Received) -> str:
        if role == "critic":
            return REJECT_SIGN if "WRONG SIGN" in request.last_user else ACCEPT
        if role == "analyzer":
            return ANALYSIS
        if role == "fix":
            return fenced(fix_for(request.last_user))
        if role == "designer":
            return fenced(PRODUCT)
        if role in ("vlm", "vlm_fix"):
            return vlm_default(request)
        return "OK"

    def __call__(self, request: Received) -> str | int:
        role = role_of(request)
        with self.lock:
            asked = self.asked.setdefault(role, [])
            if all(r is not request for r in asked):  # once per request, not once per choice of n
                asked.append(request)
            queue = self.queues.get(role)
            item = queue.popleft() if queue else None
        if item is None:
            return self.default(role, request)
        return item(request) if callable(item) else item


def fix_for(error_message: str) -> str:
    """A fixed reward for each error a regeneration request can quote."""
    if "no Python code" in error_message:
        return WEIGHTED_SUM
    if "unknown argument 'pole_angel'" in error_message:
        return WRONG_SIGN  # passes the dry run; the LLM critic vetoes it
    if "rewards falling" in error_message:
        return PRODUCT_SCALED
    if "shape" in error_message:
        return PRODUCT_SCALED
    return PRODUCT


def main() -> None:
    """Serve the scripted CartPole answers by hand, for trying the CLI against them:

    python tests/llm_script.py --port 8765 &
    OPENAI_API_KEY=sk-test rewardsmith solve tasks/cartpole.yaml --model openai/gpt-4o-mini \\
        --api-base http://127.0.0.1:8765/v1 --iterations 2 --samples 4 --sandbox process --llm-critic
    """
    import argparse
    import time

    from fake_llm_server import FakeLLMServer

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=1800, help="stop by itself after this long")
    args = parser.parse_args()
    script = Script(designer=[429, 500, fenced(PRODUCT), NO_CODE, fenced(UNKNOWN_ARGUMENT), fenced(WRONG_SHAPE),
                              fenced(WEIGHTED_SUM), fenced(PRODUCT_SCALED), fenced(PRODUCT), fenced(PRODUCT)])
    server = FakeLLMServer(script, port=args.port).start()
    print(f"serving scripted answers at {server.url} (OpenAI: {server.url}/v1, Anthropic: {server.url})", flush=True)
    try:
        time.sleep(args.seconds)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
