"""Pipeline parallelism: which layers each stage holds, and the order stages run micro-batches.

Stage assignment follows MindFormers' `offset` (so a MindFormers run config places every layer
on the same stage here); schedules are GPipe (Huang et al. 2019: all forwards, then all
backwards) and 1F1B (PipeDream-Flush, as in Megatron-LM, Narayanan et al. 2021: after a warm-up,
each stage alternates one forward and one backward, which bounds the activations it keeps).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from mf_parallel.errors import ParallelConfigError

Phase = Literal["forward", "backward"]
ScheduleKind = Literal["gpipe", "1f1b"]
SCHEDULES = ("gpipe", "1f1b")


def _require_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParallelConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParallelConfigError(f"{name}({value}) must be >= {minimum}")


# -- layers -> stages -----------------------------------------------------------------------


def assign_stages(
    num_layers: int, pipeline_stage: int, offset: int | Sequence[int] = 0
) -> list[int]:
    """The stage of every layer, in layer order, as MindFormers places them.

    - `offset` an int (MindFormers' default 0): stage = min((layer + offset) // d, stages - 1)
      with d = (num_layers + 1) // stages (`set_layer_stage_recompute` in MindFormers), so
      32 layers on 4 stages are 8 each and 30 layers are 7, 7, 7, 9.
    - `offset` a list, one int per stage: stage i holds num_layers // stages + offset[i]
      layers, in order; e.g. 30 layers, 4 stages, offset [0, 1, 1, 0] -> 7, 8, 8, 7.

    Every stage must get at least one layer and every layer exactly one stage.
    """
    _require_int("num_layers", num_layers, 1)
    _require_int("pipeline_stage", pipeline_stage, 1)
    if num_layers < pipeline_stage:
        raise ParallelConfigError(
            f"num_layers({num_layers}) < pipeline_stage({pipeline_stage}): "
            f"every pipeline stage needs at least one layer"
        )
    if isinstance(offset, int) and not isinstance(offset, bool):
        stride = max((num_layers + 1) // pipeline_stage, 1)
        stages = [min((layer + offset) // stride, pipeline_stage - 1)
                  for layer in range(num_layers)]
        counts = [stages.count(stage) for stage in range(pipeline_stage)]
        if stages[0] < 0 or 0 in counts:
            raise ParallelConfigError(
                f"offset {offset} places {num_layers} layers on {pipeline_stage} stages by "
                f"stage = min((layer + {offset}) // {stride}, {pipeline_stage - 1}) with "
                f"{stride} = ({num_layers} + 1) // {pipeline_stage}, which gives stage layer "
                f"counts {_counts_text(stages, pipeline_stage)}; every stage needs at least "
                f"one layer"
            )
        return stages
    if isinstance(offset, (str, bytes)) or not isinstance(offset, Sequence) or not all(
        isinstance(o, int) and not isinstance(o, bool) for o in offset
    ):
        raise ParallelConfigError(
            f"offset must be an integer or a list of integers (one per stage), got {offset!r}"
        )
    if len(offset) != pipeline_stage:
        raise ParallelConfigError(
            f"offset {list(offset)} has {len(offset)} entries, but pipeline_stage is "
            f"{pipeline_stage}: give one per stage"
        )
    base = num_layers // pipeline_stage
    counts = [base + o for o in offset]
    for stage, count in enumerate(counts):
        if count < 1:
            raise ParallelConfigError(
                f"offset {list(offset)} leaves stage {stage} with {base} + ({offset[stage]}) = "
                f"{count} layers, where {base} = {num_layers} // {pipeline_stage}; "
                f"every stage needs at least one layer"
            )
    if sum(counts) != num_layers:
        raise ParallelConfigError(
            f"offset {list(offset)} gives stages {' + '.join(map(str, counts))} = {sum(counts)} "
            f"layers, but the model has {num_layers}: the offsets must add up to "
            f"num_layers % pipeline_stage = {num_layers} % {pipeline_stage} = "
            f"{num_layers % pipeline_stage}"
        )
    return [stage for stage, count in enumerate(counts) for _ in range(count)]


def _counts_text(stages: list[int], pipeline_stage: int) -> str:
    counts = [sum(1 for s in stages if s == stage) for stage in range(pipeline_stage)]
    outside = sum(1 for s in stages if not 0 <= s < pipeline_stage)
    text = str(counts)
    return text + (f" ({outside} layers on a negative stage)" if outside else "")


def stage_layer_counts(stages: Sequence[int], pipeline_stage: int) -> list[int]:
    """How many layers each stage holds, from `assign_stages`' result."""
    return [sum(1 for s in stages if s == stage) for stage in range(pipeline_stage)]


# Transformer layers are `...layers.<index>.` (LLaMA, GLM, GLM2) or `...blocks.<index>.` (GPT-2,
# BLOOM, PanGu-Alpha) in the families mf ports, with MindFormers' parameter names.
LAYER_NAME = re.compile(r"(?:^|\.)(?:layers|blocks)\.(\d+)\.")


def layer_of(name: str, layer_name: re.Pattern = LAYER_NAME) -> int | None:
    """The transformer layer a parameter belongs to, or None (embedding, final norm, head)."""
    found = layer_name.search(name)
    return None if found is None else int(found.group(1))


def parameter_stages(
    names: Iterable[str], layer_stages: Sequence[int], layer_name: re.Pattern = LAYER_NAME
) -> dict[str, int]:
    """The stage of every parameter, given the stage of every layer.

    A layer's parameters go to its layer's stage. The others follow the model's own order:
    those listed before the first layer (the embedding) go to stage 0, those after it (final
    norm, LM head) to the last stage, as MindFormers places them.
    """
    if not layer_stages:
        raise ParallelConfigError("layer_stages is empty: a model needs at least one layer")
    last = max(layer_stages)
    stages: dict[str, int] = {}
    seen_layer = False
    for name in names:
        layer = layer_of(name, layer_name)
        if layer is None:
            stages[name] = last if seen_layer else 0
            continue
        if layer >= len(layer_stages):
            raise ParallelConfigError(
                f"parameter {name!r} belongs to layer {layer}, but the model has "
                f"{len(layer_stages)} layers (0..{len(layer_stages) - 1})"
            )
        seen_layer = True
        stages[name] = layer_stages[layer]
    return stages


# -- micro-batch schedules ------------------------------------------------------------------


class Step(NamedTuple):
    """One unit of pipeline work: a stage runs a micro-batch forward or backward."""

    stage: int
    micro_batch: int
    phase: Phase


def _check_schedule_args(kind: str, num_stages: int, num_micro_batches: int) -> None:
    if kind not in SCHEDULES:
        raise ParallelConfigError(f"unknown pipeline schedule {kind!r}; choose one of {SCHEDULES}")
    _require_int("num_stages", num_stages, 1)
    _require_int("num_micro_batches", num_micro_batches, 1)


def stage_programs(kind: ScheduleKind, num_stages: int, num_micro_batches: int) -> list[list[Step]]:
    """What each stage runs, in order: programs[stage] is that stage's list of steps."""
    _check_schedule_args(kind, num_stages, num_micro_batches)
    programs = []
    for stage in range(num_stages):
        forward = [Step(stage, m, "forward") for m in range(num_micro_batches)]
        backward = [Step(stage, m, "backward") for m in range(num_micro_batches)]
        if kind == "gpipe":
            programs.append(forward + backward)
            continue
        # 1F1B: warm up with enough forwards to fill the pipe below this stage, then alternate
        # one forward and one backward, then drain the remaining backwards.
        warmup = min(num_stages - stage - 1, num_micro_batches)
        program = forward[:warmup]
        for i in range(num_micro_batches - warmup):
            program += [forward[warmup + i], backward[i]]
        program += backward[num_micro_batches - warmup:]
        programs.append(program)
    return programs


@dataclass(frozen=True)
class Slot:
    start: float
    end: float
    step: Step


@dataclass(frozen=True)
class Timeline:
    """A schedule played out in time, each stage running one step at a time."""

    slots: tuple[Slot, ...]
    num_stages: int

    @property
    def makespan(self) -> float:
        return max(slot.end for slot in self.slots)

    @property
    def steps(self) -> list[Step]:
        """Every step in the order it starts (ties: lower stage first)."""
        return [s.step for s in sorted(self.slots, key=lambda s: (s.start, s.step.stage))]

    @property
    def bubble_fraction(self) -> float:
        """Share of stage-time spent idle: 1 - busy / (stages * makespan)."""
        busy = sum(slot.end - slot.start for slot in self.slots)
        return 1.0 - busy / (self.num_stages * self.makespan)

    def peak_in_flight(self, stage: int) -> int:
        """Most micro-batches whose activations `stage` holds at once.

        A micro-batch's activations exist from the start of its forward to the end of its
        backward (at equal times the release counts first).
        """
        events = sorted(
            (slot.start, 1) if slot.step.phase == "forward" else (slot.end, -1)
            for slot in self.slots if slot.step.stage == stage
        )
        peak = live = 0
        for _, delta in events:
            live += delta
            peak = max(peak, live)
        return peak


def _dependencies(step: Step, num_stages: int) -> list[Step]:
    if step.phase == "forward":
        return [Step(step.stage - 1, step.micro_batch, "forward")] if step.stage > 0 else []
    deps = [Step(step.stage, step.micro_batch, "forward")]
    if step.stage < num_stages - 1:
        deps.append(Step(step.stage + 1, step.micro_batch, "backward"))
    return deps


def simulate(
    programs: Sequence[Sequence[Step]], forward_time: float = 1.0, backward_time: float = 2.0
) -> Timeline:
    """Play the stage programs out: a step starts when its stage is free and its inputs exist.

    A forward needs the previous stage's forward of that micro-batch; a backward needs this
    stage's forward and the next stage's backward of it. Transfers take no time. The default
    backward costs twice the forward (two matmuls per forward matmul). Raises if the programs
    deadlock (a stage waits for a step that can never run first).
    """
    num_stages = len(programs)
    duration = {"forward": forward_time, "backward": backward_time}
    end: dict[Step, float] = {}
    next_index = [0] * num_stages
    free_at = [0.0] * num_stages
    slots = []
    total = sum(len(p) for p in programs)
    while len(slots) < total:
        progressed = False
        for stage, program in enumerate(programs):
            while next_index[stage] < len(program):
                step = program[next_index[stage]]
                deps = _dependencies(step, num_stages)
                if any(dep not in end for dep in deps):
                    break
                start = max([free_at[stage]] + [end[dep] for dep in deps])
                end[step] = free_at[stage] = start + duration[step.phase]
                slots.append(Slot(start, end[step], step))
                next_index[stage] += 1
                progressed = True
        if not progressed:
            waiting = [programs[s][next_index[s]] for s in range(num_stages)
                       if next_index[s] < len(programs[s])]
            raise ParallelConfigError(f"the pipeline schedule deadlocks: stuck at {waiting}")
    return Timeline(tuple(slots), num_stages)


def schedule(kind: ScheduleKind, num_stages: int, num_micro_batches: int) -> list[Step]:
    """The steps of a GPipe or 1F1B schedule as one list, in the order they start."""
    return simulate(stage_programs(kind, num_stages, num_micro_batches)).steps


def bubble_fraction(num_stages: int, num_micro_batches: int) -> float:
    """Idle share of a flushed pipeline, (p - 1) / (m + p - 1), for GPipe and 1F1B alike.

    GPipe (Huang et al. 2019) and Megatron-LM (Narayanan et al. 2021, section 2.2) derive it;
    1F1B saves activation memory, not time.
    """
    _require_int("num_stages", num_stages, 1)
    _require_int("num_micro_batches", num_micro_batches, 1)
    return (num_stages - 1) / (num_micro_batches + num_stages - 1)


def in_flight_micro_batches(kind: ScheduleKind, stage: int, num_stages: int,
                            num_micro_batches: int) -> int:
    """Micro-batches whose activations `stage` holds at its peak.

    GPipe: all m; 1F1B: min(p - s, m) (its warm-up depth plus one).
    """
    _check_schedule_args(kind, num_stages, num_micro_batches)
    if kind == "gpipe":
        return num_micro_batches
    return min(num_stages - stage, num_micro_batches)


# -- running a schedule over real ranks -----------------------------------------------------

EventKind = Literal["forward", "backward", "send_activation", "recv_activation",
                    "send_gradient", "recv_gradient"]


class Event(NamedTuple):
    """One thing a stage does: compute a micro-batch, or hand a tensor to or from a neighbour.

    An activation goes from stage s to s + 1 after s's forward of that micro-batch; a gradient
    from s + 1 back to s after s + 1's backward.
    """

    kind: EventKind
    micro_batch: int


def stage_events(kind: ScheduleKind, num_stages: int, num_micro_batches: int) -> list[list[Event]]:
    """What each stage does, in order, hand-overs included: events[stage].

    A hand-over is a blocking rendezvous of its two stages (on CPU, an AllReduce in their
    two-rank group), and an AllReduce pairs calls by their order, not by what they carry. So
    every stage takes its events from one total order of the whole pipeline's events: the
    simulated timeline of the schedule, a hand-over at the moment its tensor is produced and
    before any step starting then, ties broken the same way on both sides. No stage then waits
    for a partner that waits for something later: the earliest unfinished event always has both
    its partners ready. The last stage runs each micro-batch's backward right after its forward
    (nothing downstream to wait for), so a runner may fuse them into one compiled call.
    """
    programs = stage_programs(kind, num_stages, num_micro_batches)
    last = num_stages - 1
    programs[last] = [Step(last, m, phase) for m in range(num_micro_batches)
                      for phase in ("forward", "backward")]
    timeline = simulate(programs)
    ordered: list[tuple[tuple, int, Event]] = []  # (sort key, stage, event)
    for slot in timeline.slots:
        stage, m, phase = slot.step
        ordered.append(((slot.start, 1, stage, 0, m), stage, Event(phase, m)))
        if phase == "forward" and stage < last:  # activation: stage -> stage + 1
            key = (slot.end, 0, stage, 0, m)
            ordered.append((key, stage, Event("send_activation", m)))
            ordered.append((key, stage + 1, Event("recv_activation", m)))
        if phase == "backward" and stage > 0:  # gradient: stage -> stage - 1
            key = (slot.end, 0, stage - 1, 1, m)
            ordered.append((key, stage, Event("send_gradient", m)))
            ordered.append((key, stage - 1, Event("recv_gradient", m)))
    ordered.sort(key=lambda item: item[0])
    return [[event for _, s, event in ordered if s == stage] for stage in range(num_stages)]


def schedule_kind(pipeline_config: object) -> ScheduleKind:
    """The schedule a run YAML asks for: MindSpore's `parallel.pipeline_config.pipeline_scheduler`
    ("1f1b", its default, or "gpipe"), which MindFormers passes to set_auto_parallel_context."""
    if pipeline_config is None:
        return "1f1b"
    if not isinstance(pipeline_config, dict):
        raise ParallelConfigError(
            f"parallel.pipeline_config must be a mapping, got {pipeline_config!r}")
    value = pipeline_config.get("pipeline_scheduler", "1f1b")
    if value not in SCHEDULES:
        raise ParallelConfigError(
            f"parallel.pipeline_config.pipeline_scheduler {value!r} is not one of "
            f"{list(SCHEDULES)} (MindSpore's seqpipe and zero-bubble schedules are not in mf)")
    return value
