"""``vlm`` feedback: a vision-language model watches the iteration's rollouts and ranks them.

In place of ICPL's person (as in RL-VLM-F), the model gets the task's description and, for each
candidate with a trained policy, a contact sheet of its recorded episode (:mod:`.frames`), and
answers with best, worst, an optional full order and a sentence of why for each. An answer that
is not such a ranking gets one follow-up quoting the problem (:mod:`.vlm_answer`); if the second
answer is no better, the run waits for a person's ranking as ``--feedback human`` would.

The ranking is saved like a person's (``RUN/rankings.jsonl``, ``judge: vlm``, with the model and
its reasons) and becomes the same preference feedback; the designer reads the reasons as it would
a person's words. A person's ranking of the iteration wins over the model's: one saved before the
model is asked is used instead, and one saved afterwards replaces it when the run resumes (as
long as the next iteration is not designed yet).

Requests go through the run's LLM client (cache keyed on the images' hashes, retries, cost tally
and ``--max-cost``, every exchange in ``RUN/llm/``). The contact sheets are kept beside each
candidate (``vlm_frames.png``), and the logs name them by path and hash.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from ..errors import FeedbackPending
from ..llm.client import LLMClient
from ..prompting import render
from ..runs import RunDir, atomic_write_bytes
from ..schemas import Feedback, ImagePart, IterationRecord, LLMRequest, Ranking, TextPart
from ..task import TaskSpec
from .frames import contact_sheet
from .ranking import feedback_from_order, named, ranked, ranking_feedback
from .vlm_answer import AnswerProblem, parse_verdict

SHEET_FILE = "vlm_frames.png"
FRAMES = 6


def probe_image() -> ImagePart:
    """A 16x16 PNG for the preflight request that checks the model takes images."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 120, 200)).save(buffer, format="PNG")
    return ImagePart.of(buffer.getvalue(), "image/png", 16, 16)


def check_vision(client: LLMClient) -> None:
    """A one-line :class:`~rewardsmith.errors.LLMError` unless the model answers a request with an
    image (a missing key, an unreachable server and a text-only model alike), before anything runs."""
    client.preflight(image=probe_image(), who="VLM", flag="--vlm-api-base")


class VLMFeedback:
    kind = "vlm"

    def __init__(self, client: LLMClient, run_path: Path, frames: int = FRAMES):
        self.client = client
        self.run_path = Path(run_path)
        self.frames = frames

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback:
        run = RunDir(self.run_path)
        trained = {c.index for c in record.candidates if c.status == "ok"}
        person = run.latest_ranking(record.iteration, judge="person")
        if person is not None and named(person) <= trained:
            return ranking_feedback(person)  # a person's ranking wins
        shown = self._sheets(run, record)
        if len(shown) < 2:
            order = ranked(record, lambda c: -c.index)
            return feedback_from_order(record, self.kind, order, "fewer than two trained candidates with a recorded "
                                                                 "episode; the VLM was not asked")
        earlier = run.latest_ranking(record.iteration, judge="vlm")
        if earlier is not None and earlier.model == self.client.model and named(earlier) <= set(shown):
            return ranking_feedback(earlier)  # ranked before the run stopped
        ranking = self._ask(run, record, task, shown)
        run.save_ranking(ranking)
        return ranking_feedback(ranking)

    def _sheets(self, run: RunDir, record: IterationRecord) -> dict[int, ImagePart]:
        """A contact sheet per trained candidate with a recorded episode, saved beside it."""
        shown = {}
        for c in record.candidates:
            if c.status != "ok":
                continue
            folder = run.candidate_dir(record.iteration, c.index)
            sheet = contact_sheet(folder, f"candidate {c.index}: {self.frames} moments of one episode, in reading "
                                          "order", frames=self.frames)
            if sheet is None:
                continue
            atomic_write_bytes(folder / SHEET_FILE, sheet.png)
            shown[c.index] = ImagePart.of(sheet.png, "image/png", sheet.width, sheet.height,
                                          file=run.relative(folder / SHEET_FILE))
        return shown

    def _ask(self, run: RunDir, record: IterationRecord, task: TaskSpec, shown: dict[int, ImagePart]) -> Ranking:
        numbers = sorted(shown)
        listed = ", ".join(map(str, numbers))
        parts: list[TextPart | ImagePart] = [TextPart(text=render(
            "vlm", task_description=task.description.strip(), candidates=listed, frames=self.frames))]
        for index in numbers:
            parts += [TextPart(text=f"Candidate {index}:"), shown[index]]
        conversation: list[tuple[str, str | tuple[TextPart | ImagePart, ...]]] = [
            ("system", render("vlm_system")), ("user", tuple(parts))]
        purpose = f"vlm rank iteration {record.iteration + 1}"
        problem = ""
        for _ in range(2):
            reply, _log = self.client.ask(LLMRequest.chat(*conversation, temperature=0.0), purpose=purpose)
            answer = reply.texts[0] if reply.texts else ""
            try:
                verdict = parse_verdict(answer, numbers)
                break
            except AnswerProblem as exc:
                problem = str(exc)
            conversation += [("assistant", answer), ("user", render("vlm_fix", problem=problem, candidates=listed))]
            purpose = f"vlm fix iteration {record.iteration + 1}"
        else:
            raise FeedbackPending(
                f"the VLM ({self.client.model}) gave no usable ranking of iteration {record.iteration + 1} "
                f"({problem}); rank it yourself with `rewardsmith rank {self.run_path}`, then continue with "
                f"`rewardsmith solve --resume {self.run_path}`")
        return Ranking(iteration=record.iteration, best=verdict.best, worst=verdict.worst, order=verdict.order,
                       time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), judge="vlm", model=self.client.model,
                       reasons=verdict.reasons)

