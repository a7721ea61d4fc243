"""Typed records passed between stages and written to the run directory.

Records that come back from a sandbox are untrusted: they are parsed with these models (extra
keys forbidden, sizes bounded by the reader) and only the evaluation's fitness, measured in a
process that never loads reward code, decides which candidate is best.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["ok", "rejected", "failed", "skipped"]
RunsAs = Literal["python", "torchscript"]
RUNS_AS_HELP = "how the sandbox ran the reward code: as TorchScript (it asked for @torch.jit.script and both " \
               "the code and the env's tensors allowed it) or as plain Python"
TORCHSCRIPT_ERROR_HELP = "why code written for TorchScript ran as plain Python"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stats(Record):
    """Summary of a quantity over many steps."""

    mean: float
    std: float
    min: float
    max: float


class Candidate(Record):
    """A reward proposed by a designer."""

    iteration: int
    index: int
    code: str
    origin: dict = Field(default_factory=dict, description="how the designer made it (params, sample id)")


class EpisodeMeta(Record):
    """What is known about one recorded episode besides its states and actions."""

    source: Literal["eval", "train", "video", "random", "probe"] = Field(
        description="eval: the trained policy's clean evaluation; train: the trained policy with sampled actions, "
                    "as in training; video: the episode of the video; random: a random policy; probe: a probe "
                    "training's policy (not recorded yet)")
    fitness: float = Field(description="the task's fitness of this episode")
    length: int = Field(ge=1)
    ended: str = Field("", description="why it ended: a termination's name, other_termination or time_limit")
    step: int | None = Field(None, description="train: the training step the policy was saved at")
    hold: int | None = Field(None, description="random: how many steps each random action was held")
    iteration: int | None = Field(None, description="the candidate whose policy played it (set by the host)")
    index: int | None = None

    def label(self) -> str:
        """Where the episode came from, in words."""
        who = (f"iteration {self.iteration + 1} candidate {self.index}"
               if self.iteration is not None and self.index is not None else "a candidate")
        if self.source == "random":
            return "a random policy" + (f" (each action held {self.hold} steps)" if self.hold and self.hold > 1 else "")
        if self.source == "probe":
            return "the probe training's policy"
        if self.source == "train":
            return f"{who}'s policy during training" + (f" (step {self.step:,})" if self.step is not None else "")
        return f"{who}'s trained policy"


class StoredEpisode(Record):
    """An episode kept in the run's episode store (``RUN/episodes/index.json``)."""

    id: int
    batch: str = Field(description="the file under RUN/episodes/ that holds it")
    slot: int = Field(description="its position in that file")
    bytes: int
    meta: EpisodeMeta


class ScreeningReport(Record):
    """How a candidate's reward ranks the stored episodes against their task fitness."""

    episodes: int
    correlation: float | None = Field(None, description="Spearman rank correlation of returns and fitness")
    pair_accuracy: float | None = Field(None, description="of the pairs whose fitness differs, the fraction whose "
                                                          "better episode got the higher return")
    best_mean_return: float | None = Field(None, description="mean return of the best-scoring quarter of episodes")
    worst_mean_return: float | None = Field(None, description="mean return of the worst-scoring quarter")
    passed: bool
    judged: bool = Field(True, description="false: the stored episodes did not differ enough in fitness to judge")
    reason: str | None = None


class CriticVerdict(Record):
    ok: bool
    stage: Literal["static", "dry_run", "screen", "llm", "duplicate"] = "static"
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    screening: ScreeningReport | None = None


class TrainCheckpoint(Record):
    """Statistics over the steps since the previous checkpoint (Eureka's reward reflection)."""

    step: int
    wall_s: float
    reward: Stats
    components: dict[str, Stats]
    episodes: int
    fitness: float | None = Field(None, description="mean task fitness of training episodes that ended")
    episode_length: float | None = None
    terminations: dict[str, int] = Field(default_factory=dict, description="why episodes ended")
    eval_fitness: float | None = Field(None, description="deterministic evaluation, when one ran")
    diagnostics: dict[str, float] = Field(
        default_factory=dict, description="the learner's own health since the previous checkpoint (PPO: "
                                          "approx_kl, clip_fraction, explained_variance, policy_loss, value_loss, "
                                          "entropy; SAC: q_loss, actor_loss, alpha, q_mean, entropy), to tell a bad "
                                          "reward from unstable training")


class TrainLog(Record):
    checkpoints: list[TrainCheckpoint]
    env_steps: int
    wall_s: float
    steps_per_s: float
    stopped_early: bool = False
    nonfinite_rewards: int = 0
    device: str = "cpu"
    rollout_s: float = 0.0  # of wall_s: collecting experience (env, policy, reward)
    update_s: float = 0.0   # of wall_s: the gradient steps
    algorithm: Literal["ppo", "sac"] = "ppo"
    gradient_steps: int = Field(0, ge=0, description="gradient steps taken")
    reused_transitions: int = Field(0, ge=0, description="SAC: transitions of earlier runs its replay started with, "
                                                         "relabelled with this run's reward")
    shared_transitions: int = Field(0, ge=0, description="SAC: transitions received while training from candidates "
                                                         "training at the same time, relabelled with this run's "
                                                         "reward")
    reused_share: float = Field(0.0, ge=0, le=1, description="SAC: share of the transitions its gradient steps "
                                                              "sampled that were reused or received (expected "
                                                              "value)")


class WorkerOutcome(Record):
    """What the training worker reports about itself (untrusted)."""

    status: Literal["ok", "rejected", "failed"]
    reason: str | None = None
    log: TrainLog | None = None
    runs_as: RunsAs = Field("python", description=RUNS_AS_HELP)
    torchscript_error: str | None = Field(None, max_length=1000, description=TORCHSCRIPT_ERROR_HELP)


class EvalSummary(Record):
    """Evaluation of a trained policy with the task's fitness; computed without the reward code."""

    fitness: float
    success: bool
    episodes: int
    fitness_per_episode: list[float]
    episode_length: Stats
    terminations: dict[str, int]
    variables: dict[str, Stats] = Field(default_factory=dict, description="what the policy did")
    wall_s: float = 0.0


class Finding(Record):
    kind: Literal["constant", "dominating", "rising_without_fitness", "nonfinite", "no_progress",
                  "early_termination"]
    component: str | None = None
    detail: str


class Analysis(Record):
    findings: list[Finding]
    text: str = Field(description="the feedback as the designer will read it")
    llm_summary: str | None = Field(None, description="the LLM trajectory analyzer's account of what the policy "
                                                      "did, why episodes ended, and what to change")


class CandidateResult(Record):
    """Everything known about one candidate after it went through the pipeline."""

    iteration: int
    index: int
    status: Status
    reason: str | None = None
    fitness: float | None = None
    success: bool = False
    reward_file: str
    code: str = ""
    origin: dict = Field(default_factory=dict)
    critic: CriticVerdict | None = None
    train: TrainLog | None = None
    eval: EvalSummary | None = None
    analysis: Analysis | None = None
    wall_s: float = 0.0
    sandbox: str = ""
    runs_as: RunsAs = Field("python", description=RUNS_AS_HELP)
    torchscript_error: str | None = Field(None, description=TORCHSCRIPT_ERROR_HELP)
    init_from: str | None = Field(None, description="warm start: the candidate folder whose policy it started from")

    @property
    def component_names(self) -> list[str]:
        if not self.train or not self.train.checkpoints:
            return []
        return list(self.train.checkpoints[-1].components)


class RolloutTrace(Record):
    """One episode of a trained policy (deterministic actions) with the candidate's reward per step.

    The states, actions and frames are recorded by the clean evaluation job (no reward code); the
    reward and its components come from scoring those states with the candidate's reward in a
    sandboxed ``score`` job, so they are the reward's own numbers: shown to people and designers
    beside the video, never used to score.
    """

    steps: int
    dt: float | None = None
    fps: float = Field(description="frames per second of the video")
    frame_steps: list[int] = Field(description="the step each video frame shows (0 is the start)")
    reward: list[float]
    components: dict[str, list[float]]
    variables: dict[str, list[float]] = Field(description="scalar state variables after each step")
    action: list[list[float]]
    terminated: bool
    episode_return: float


Judge = Literal["person", "vlm"]


class Ranking(Record):
    """A judgement of one iteration's candidates: a person's (``rewardsmith rank``) or a
    vision-language model's (``--feedback vlm``). Lines written before ``judge`` existed are a
    person's."""

    iteration: int
    best: int
    worst: int | None = None
    order: list[int] = Field(default_factory=list, description="a full ranking, best first (optional)")
    time: str = Field(description="when it was given, ISO 8601")
    judge: Judge = "person"
    model: str | None = Field(None, description="the vision-language model that ranked, for judge 'vlm'")
    reasons: dict[int, str] = Field(default_factory=dict, description="why, in the judge's words, per candidate")


class Feedback(Record):
    """The judgement on one iteration that the designer reads next."""

    iteration: int
    kind: Literal["metric", "human", "synthetic", "vlm"]
    best: int | None
    worst: int | None = None
    order: list[int] = Field(default_factory=list, description="candidate indices, best first")
    note: str = ""
    reasons: dict[int, str] = Field(default_factory=dict, description="the judge's words per candidate, if any")


class IterationRecord(Record):
    iteration: int
    candidates: list[CandidateResult]
    feedback: Feedback | None = None


class BestCandidate(Record):
    iteration: int
    index: int
    fitness: float
    success: bool
    reward_file: str


class CandidateLine(Record):
    iteration: int
    index: int
    status: Status
    fitness: float | None
    reason: str | None
    success: bool = False


class LLMUsage(Record):
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = Field(0, description="requests repeated after a 429, 5xx or timeout")

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(**{k: getattr(self, k) + getattr(other, k) for k in LLMUsage.model_fields})


class FinalEvaluation(Record):
    """The best reward retrained from scratch with other seeds (Eureka's final evaluation)."""

    reward_file: str
    seeds: list[int]
    fitness: list[float | None]
    statuses: list[str]
    mean: float | None
    std: float | None
    success_rate: float


class ScreeningCost(Record):
    """What screening took in a run: the first iteration's episodes and the probe."""

    random_episodes: int = 0
    random_env_steps: int = Field(0, description="env steps of the random policies' episodes")
    probe_env_steps: int = 0
    wall_s: float = Field(0.0, description="collecting the random episodes and the probe")
    screened: int = Field(0, description="candidates not trained because of how they ranked the stored episodes")
    stored_episodes: int = 0


class Summary(Record):
    task: str
    status: Literal["running", "done", "stopped"]
    best: BestCandidate | None
    candidates: list[CandidateLine]
    wall_s: float
    iterations_done: int
    llm: LLMUsage = LLMUsage()
    designer: str = ""
    sandbox: str = ""
    final: FinalEvaluation | None = None
    stopped_reason: str | None = Field(None, description="why the run stopped early (e.g. --max-cost reached)")
    env_steps: int = Field(0, description="env steps of every training (candidates and the probe)")
    screening: ScreeningCost | None = None


class RecordSpec(Record):
    """What an evaluation job records besides its fitness (episodes for the store, the video)."""

    episodes: int = Field(0, ge=0, description="evaluation episodes to record (states and actions)")
    sampled: int = Field(0, ge=0, description="more episodes of the policy with sampled actions, as in training")
    video: bool = Field(False, description="play one more episode in an env that draws itself, for the video")
    random_holds: list[int] = Field(default_factory=list, description="no policy: random actions, each held this "
                                                                      "many steps (one batch of episodes per entry)")
    random_episodes: int = Field(16, ge=1, description="episodes per entry of random_holds")


class WorkerJob(Record):
    """What the host asks a worker to do; written as ``job.json`` into the job folder."""

    kind: Literal["check", "train", "evaluate", "score"]
    task: dict = Field(description="the resolved task (TaskSpec as a dict)")
    reward_file: str | None = Field(None, description="reward code, relative to the job folder")
    policy_file: str = "policy.pt"
    device: str = "auto"
    threads: int = 1
    eval_seed: int = 1_000_003
    record: RecordSpec | None = Field(None, description="evaluate: what to record besides the fitness")
    episodes_file: str | None = Field(None, description="check and score: stored episodes to score the reward on")
    gamma: float = Field(1.0, description="discount of the returns a score or check job computes")
    per_step: bool = Field(False, description="score: write each step's reward and components to scores.npz")
    wait: bool = Field(False, description="score: the job starts ahead and waits for the host's go file")
    init_policy: str | None = Field(None, description="train: a policy to start from (warm start)")
    experience_in: str | None = Field(None, description="SAC: stem of the files of earlier candidates' transitions "
                                                        "to start from, relabelled with this reward")
    experience_out: str | None = Field(None, description="SAC: stem of the files to write the transitions this "
                                                         "job collected into")
    experience_max_bytes: int = Field(64 * 1024 * 1024, ge=0, description="the most bytes of transitions to write")
    share_every: int | None = Field(None, ge=1, description="SAC: env steps between exchanges with the candidates "
                                                          "training at the same time (through shared_out/ and "
                                                          "shared_in/); None: no live sharing")
    share_max_bytes: int = Field(0, ge=0, description="SAC: the most bytes of transitions to receive live")


class CheckReport(Record):
    """Result of a dry run of reward code on real states."""

    ok: bool
    reason: str | None = None
    components: list[str] = Field(default_factory=list)
    signature: list[float] = Field(default_factory=list, description="total reward on a fixed batch of states")
    returns: list[float] = Field(default_factory=list, description="the reward summed over each stored episode the "
                                                                   "job was given (for screening)")
    runs_as: RunsAs = Field("python", description=RUNS_AS_HELP)
    torchscript_error: str | None = Field(None, max_length=1000, description=TORCHSCRIPT_ERROR_HELP)


class ScoreReport(Record):
    """What a ``score`` job reports: the reward's returns on the episodes it was given (untrusted:
    the reward ran there)."""

    returns: list[float] = Field(description="discounted return of each episode")
    totals: list[float] = Field(description="undiscounted sum of the reward over each episode")
    components: list[str] = Field(default_factory=list)
    steps: int


class SeedEvaluation(Record):
    """One seed of a final evaluation (``rewardsmith eval``)."""

    seed: int
    fitness: float | None
    success: bool = False
    status: Status = "ok"
    reason: str | None = None
    episode_length: float | None = None


class PolicyEvaluation(Record):
    """The best candidate's saved policy measured over several evaluation seeds (``rewardsmith eval``)."""

    candidate: str = Field(description="the candidate folder, relative to the run directory")
    episodes_per_seed: int
    seeds: list[SeedEvaluation]
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    success_rate: float = Field(description="fraction of seeds whose mean fitness passes the threshold")
    success_threshold: float
    wall_s: float


class TextPart(Record):
    type: Literal["text"] = "text"
    text: str


class ImagePart(Record):
    """An image in a message. Its bytes are not part of the record as it is dumped (the cache key
    and the logs in ``RUN/llm/``): the hash stands for them, and ``file`` says where it is kept."""

    type: Literal["image"] = "image"
    media_type: Literal["image/png", "image/jpeg"]
    sha256: str
    width: int
    height: int
    file: str = Field("", description="where the image is kept, relative to the run directory")
    data: bytes = Field(b"", exclude=True, repr=False)

    @classmethod
    def of(cls, data: bytes, media_type: Literal["image/png", "image/jpeg"], width: int, height: int,
           file: str = "") -> ImagePart:
        import hashlib

        return cls(media_type=media_type, sha256=hashlib.sha256(data).hexdigest(), width=width, height=height,
                   file=file, data=data)

    def data_url(self) -> str:
        import base64

        assert self.data, "an image record without its bytes (read back from a log?) cannot be sent"
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class LLMMessage(Record):
    role: Literal["system", "user", "assistant"]
    content: str | tuple[ContentPart, ...] = Field(description="text, or text and images in order")

    @property
    def text(self) -> str:
        """The message's text (its text parts, joined)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        return [] if isinstance(self.content, str) else [p for p in self.content if isinstance(p, ImagePart)]


class LLMRequest(Record):
    """One chat request; ``n`` answers to the same messages."""

    messages: tuple[LLMMessage, ...]
    n: int = Field(1, ge=1)
    temperature: float | None = None
    max_tokens: int | None = None

    @classmethod
    def chat(cls, *pairs: tuple[str, str | tuple[TextPart | ImagePart, ...]], **options) -> LLMRequest:
        """``LLMRequest.chat(("system", "..."), ("user", "..."))``; a content may be a tuple of
        :class:`TextPart` and :class:`ImagePart`."""
        return cls(messages=tuple(LLMMessage(role=r, content=c) for r, c in pairs), **options)


class LLMReply(Record):
    """The answers to one request and what they cost."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
