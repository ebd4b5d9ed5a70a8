"""Pipeline stages (MindFormers' offset) and GPipe / 1F1B schedules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import (
    ParallelConfigError,
    assign_stages,
    bubble_fraction,
    parameter_stages,
    schedule,
    simulate,
    stage_programs,
)
from mf_parallel.pipeline import (
    Step,
    in_flight_micro_batches,
    schedule_kind,
    stage_events,
    stage_layer_counts,
)

# Tests run on shared machines: an example's time is not what these properties check.
no_deadline = settings(deadline=None)


def _check_stage_list(stages, num_layers, pipeline_stage):
    assert len(stages) == num_layers  # every layer lands on exactly one stage
    assert stages == sorted(stages)  # in order
    assert set(stages) == set(range(pipeline_stage))  # every stage holds a layer


@no_deadline
@given(data=st.data(), num_layers=st.integers(1, 96))
def test_default_offset_places_every_layer_once_in_order(data, num_layers):
    pp = data.draw(st.integers(1, num_layers))
    _check_stage_list(assign_stages(num_layers, pp), num_layers, pp)


@no_deadline
@given(data=st.data(), num_layers=st.integers(1, 96))
def test_list_offsets_place_every_layer_once_in_order(data, num_layers):
    pp = data.draw(st.integers(1, num_layers))
    base = num_layers // pp
    # Random per-stage counts >= 1 that add up to num_layers, written as offsets from base.
    cuts = sorted(data.draw(st.lists(st.integers(1, num_layers - 1), min_size=pp - 1,
                                     max_size=pp - 1, unique=True))) if pp > 1 else []
    bounds = [0, *cuts, num_layers]
    counts = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    offset = [c - base for c in counts]
    stages = assign_stages(num_layers, pp, offset)
    _check_stage_list(stages, num_layers, pp)
    assert stage_layer_counts(stages, pp) == counts


def test_mindformers_placement_examples():
    # MindFormers' int offset: stage = min((layer + offset) // ((L + 1) // pp), pp - 1).
    assert stage_layer_counts(assign_stages(32, 4), 4) == [8, 8, 8, 8]
    assert stage_layer_counts(assign_stages(30, 4), 4) == [7, 7, 7, 9]
    assert stage_layer_counts(assign_stages(30, 4, 2), 4) == [5, 7, 7, 11]
    # A list gives each stage num_layers // pp + offset[i] layers.
    assert stage_layer_counts(assign_stages(30, 4, [0, 1, 1, 0]), 4) == [7, 8, 8, 7]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((30, 4, [0, 1, 0, 0]),
         "offset [0, 1, 0, 0] gives stages 7 + 8 + 7 + 7 = 29 layers, but the model has 30: the "
         "offsets must add up to num_layers % pipeline_stage = 30 % 4 = 2"),
        ((30, 4, [0, 1, 1]),
         "offset [0, 1, 1] has 3 entries, but pipeline_stage is 4: give one per stage"),
        ((30, 4, [-7, 7, 1, 1]),
         "offset [-7, 7, 1, 1] leaves stage 0 with 7 + (-7) = 0 layers, where 7 = 30 // 4; "
         "every stage needs at least one layer"),
        ((30, 4, 9),
         "offset 9 places 30 layers on 4 stages by stage = min((layer + 9) // 7, 3) with "
         "7 = (30 + 1) // 4, which gives stage layer counts [0, 5, 7, 18]; every stage needs "
         "at least one layer"),
        ((3, 4), "num_layers(3) < pipeline_stage(4): every pipeline stage needs at least one "
                 "layer"),
        ((4, 0), "pipeline_stage(0) must be >= 1"),
        ((4, 2, "1"), "offset must be an integer or a list of integers (one per stage), got '1'"),
    ],
)
def test_stage_errors(args, message):
    with pytest.raises(ParallelConfigError) as info:
        assign_stages(*args)
    assert str(info.value) == message


def test_parameters_follow_their_layer_and_the_model_order():
    names = ["model.tok_embeddings.weight", "model.layers.0.wq", "model.layers.1.wq",
             "model.layers.2.wq", "model.norm.weight", "lm_head.weight"]
    stages = parameter_stages(names, [0, 1, 1])
    assert stages == {"model.tok_embeddings.weight": 0, "model.layers.0.wq": 0,
                      "model.layers.1.wq": 1, "model.layers.2.wq": 1,
                      "model.norm.weight": 1, "lm_head.weight": 1}
    with pytest.raises(ParallelConfigError, match=r"belongs to layer 5, but the model has 3"):
        parameter_stages(["model.layers.5.wq"], [0, 1, 1])


def test_gpt_style_blocks_are_layers_too():
    # GPT-2, BLOOM and PanGu-Alpha name their layers `blocks.<i>`; PanGu's top query layer
    # after them is not a numbered layer and goes with the head.
    names = ["backbone.embedding.word_embedding.embedding_table", "backbone.blocks.0.w",
             "backbone.blocks.1.w", "backbone.top_query_layer.w", "backbone.layernorm.gamma"]
    assert parameter_stages(names, [0, 1]) == dict(zip(names, [0, 0, 1, 1, 1], strict=True))


kinds = st.sampled_from(["gpipe", "1f1b"])


@no_deadline
@given(kind=kinds, p=st.integers(1, 6), m=st.integers(1, 10))
def test_schedule_runs_every_step_once_after_its_dependency(kind, p, m):
    steps = schedule(kind, p, m)
    expected = {Step(s, b, ph) for s in range(p) for b in range(m)
                for ph in ("forward", "backward")}
    assert len(steps) == len(expected) and set(steps) == expected
    position = {step: i for i, step in enumerate(steps)}
    for step in steps:
        if step.phase == "forward" and step.stage > 0:
            assert position[Step(step.stage - 1, step.micro_batch, "forward")] < position[step]
        if step.phase == "backward":
            assert position[Step(step.stage, step.micro_batch, "forward")] < position[step]
            if step.stage < p - 1:
                assert position[Step(step.stage + 1, step.micro_batch, "backward")] < \
                    position[step]


@no_deadline
@given(kind=kinds, p=st.integers(1, 6), m=st.integers(1, 10),
       tf=st.sampled_from([1.0, 2.0]), tb=st.sampled_from([1.0, 2.0, 3.0]))
def test_timeline_never_starts_a_step_before_its_inputs(kind, p, m, tf, tb):
    timeline = simulate(stage_programs(kind, p, m), forward_time=tf, backward_time=tb)
    end = {slot.step: slot.end for slot in timeline.slots}
    by_stage: dict[int, list] = {}
    for slot in timeline.slots:
        by_stage.setdefault(slot.step.stage, []).append(slot)
        s, b = slot.step.stage, slot.step.micro_batch
        if slot.step.phase == "forward" and s > 0:
            assert end[Step(s - 1, b, "forward")] <= slot.start
        if slot.step.phase == "backward":
            assert end[Step(s, b, "forward")] <= slot.start
            if s < p - 1:
                assert end[Step(s + 1, b, "backward")] <= slot.start
    for slots in by_stage.values():  # a stage runs one step at a time
        slots.sort(key=lambda x: x.start)
        assert all(a.end <= b.start for a, b in zip(slots, slots[1:], strict=False))


@no_deadline
@given(kind=kinds, p=st.integers(1, 8), m=st.integers(1, 16), tb=st.sampled_from([1.0, 2.0]))
def test_bubble_fraction_matches_the_papers_formula(kind, p, m, tb):
    # GPipe (Huang et al. 2019) and Megatron-LM (Narayanan et al. 2021): (p - 1) / (m + p - 1).
    timeline = simulate(stage_programs(kind, p, m), backward_time=tb)
    assert timeline.bubble_fraction == pytest.approx((p - 1) / (m + p - 1))
    assert bubble_fraction(p, m) == pytest.approx((p - 1) / (m + p - 1))


@no_deadline
@given(kind=kinds, p=st.integers(1, 6), m=st.integers(1, 10))
def test_peak_activations_in_flight(kind, p, m):
    timeline = simulate(stage_programs(kind, p, m))
    for stage in range(p):
        expected = m if kind == "gpipe" else min(p - stage, m)
        assert timeline.peak_in_flight(stage) == expected
        assert in_flight_micro_batches(kind, stage, p, m) == expected


def test_a_schedule_that_deadlocks_is_reported():
    # Stage 0 runs backward before stage 1 has had the forward it depends on.
    programs = [[Step(0, 0, "forward"), Step(0, 0, "backward")],
                [Step(1, 0, "backward"), Step(1, 0, "forward")]]
    with pytest.raises(ParallelConfigError, match=r"^the pipeline schedule deadlocks"):
        simulate(programs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("zb", 2, 2), "unknown pipeline schedule 'zb'; choose one of ('gpipe', '1f1b')"),
        (("1f1b", 0, 2), "num_stages(0) must be >= 1"),
        (("gpipe", 2, 0), "num_micro_batches(0) must be >= 1"),
    ],
)
def test_schedule_errors(args, message):
    with pytest.raises(ParallelConfigError) as info:
        schedule(*args)
    assert str(info.value) == message


def _run_blocking(events):
    """Play per-stage event lists where every hand-over blocks until its partner reaches the
    matching call (an AllReduce pairs calls by order); return what each stage did, or raise
    on a deadlock or a mismatched pair."""
    position = [0] * len(events)
    done = [[] for _ in events]
    partner = {"send_activation": (1, "recv_activation"),
               "recv_activation": (-1, "send_activation"),
               "send_gradient": (-1, "recv_gradient"), "recv_gradient": (1, "send_gradient")}
    while any(position[s] < len(e) for s, e in enumerate(events)):
        moved = False
        for stage, program in enumerate(events):
            while position[stage] < len(program):
                event = program[position[stage]]
                if event.kind in ("forward", "backward"):
                    done[stage].append(event)
                    position[stage] += 1
                    moved = True
                    continue
                offset, kind = partner[event.kind]
                other = stage + offset
                if position[other] >= len(events[other]):
                    raise AssertionError(f"stage {stage} waits on finished stage {other}")
                theirs = events[other][position[other]]
                if theirs.kind not in partner:
                    break  # the partner is still computing: wait
                if (theirs.kind, theirs.micro_batch) != (kind, event.micro_batch):
                    if partner[theirs.kind][0] == -offset:  # same channel, wrong pairing
                        raise AssertionError(f"stage {stage} {event} meets {theirs}")
                    break  # the partner waits on its other channel
                done[stage].append(event)
                done[other].append(theirs)
                position[stage] += 1
                position[other] += 1
                moved = True
        if not moved:
            raise AssertionError(f"deadlock at {position}")
    return done


@no_deadline
@given(kind=kinds, p=st.integers(1, 5), m=st.integers(1, 8))
def test_stage_events_pair_every_hand_over_and_never_deadlock(kind, p, m):
    events = stage_events(kind, p, m)
    done = _run_blocking(events)
    for stage, program in enumerate(done):
        seen = set()
        for event in program:
            b = event.micro_batch
            if event.kind == "forward" and stage > 0:
                assert ("recv_activation", b) in seen  # its input arrived first
            if event.kind == "backward":
                assert ("forward", b) in seen
                if stage < p - 1:
                    assert ("recv_gradient", b) in seen
            if event.kind == "send_activation":
                assert ("forward", b) in seen
            if event.kind == "send_gradient":
                assert ("backward", b) in seen
            seen.add((event.kind, b))
        computes = {(k, b) for k, b in seen if k in ("forward", "backward")}
        assert computes == {(k, b) for k in ("forward", "backward") for b in range(m)}


def test_stage_events_keep_each_schedule_on_the_middle_stages():
    def computes(kind):
        return [(e.kind, e.micro_batch) for e in stage_events(kind, 3, 4)[0]
                if e.kind in ("forward", "backward")]

    assert computes("gpipe") == [("forward", b) for b in range(4)] + \
        [("backward", b) for b in range(4)]
    assert computes("1f1b")[:4] == [("forward", 0), ("forward", 1), ("forward", 2),
                                    ("backward", 0)]  # warm-up of p - 1 = 2, then alternate
    last = [(e.kind, e.micro_batch) for e in stage_events("gpipe", 3, 4)[2]
            if e.kind in ("forward", "backward")]
    assert last[:2] == [("forward", 0), ("backward", 0)]  # the last stage fuses F and B


def test_schedule_kind_reads_mindspores_pipeline_config():
    assert schedule_kind(None) == "1f1b" and schedule_kind({}) == "1f1b"
    assert schedule_kind({"pipeline_scheduler": "gpipe", "pipeline_interleave": False}) == "gpipe"
    with pytest.raises(ParallelConfigError, match=r"'seqpipe' is not one of \['gpipe', '1f1b'\]"):
        schedule_kind({"pipeline_scheduler": "seqpipe"})
