import collections

import numpy as np
import pytest

from drivetrain.core import nest, specs


def test_bounds_are_inclusive_and_sample_reaches_both_ends():
    spec = specs.BoundedArraySpec((), np.int64, 0, 3, "action")
    values = spec.sample(np.random.default_rng(0), (2000,))
    assert set(np.unique(values).tolist()) == {0, 1, 2, 3}
    spec.check(np.array([0, 3]), outer_ndim=1)
    with pytest.raises(specs.SpecError, match=r"action: expected values in \[0, 3\] \(inclusive\), got 4"):
        spec.check(np.array([0, 4]), outer_ndim=1)
    with pytest.raises(specs.SpecError, match="got -1"):
        spec.check(np.array([-1]), outer_ndim=1)


def test_validate_names_field_shape_and_dtype():
    spec = {"pos": specs.ArraySpec((2,), np.float32), "act": specs.BoundedArraySpec((), np.int64, 0, 1)}
    good = {"pos": np.zeros((5, 2), np.float32), "act": np.ones(5, np.int64)}
    specs.validate(spec, good)
    with pytest.raises(specs.SpecError, match=r"pos: expected shape \[B\] \+ \(2,\), got \(5, 3\)"):
        specs.validate(spec, {**good, "pos": np.zeros((5, 3), np.float32)})
    with pytest.raises(specs.SpecError, match="pos: expected dtype float32, got float64"):
        specs.validate(spec, {**good, "pos": np.zeros((5, 2))})
    with pytest.raises(specs.SpecError, match=r"expected keys \['act', 'pos'\], got \['pos'\]"):
        specs.validate(spec, {"pos": good["pos"]})


def test_validate_names_nested_path_in_namedtuple():
    Obs = collections.namedtuple("Obs", ["image", "vector"])
    spec = Obs(specs.BoundedArraySpec((2, 2), np.uint8, 0, 255), specs.ArraySpec((3,), np.float32))
    value = Obs(np.zeros((1, 2, 2), np.uint8), np.zeros((1, 4), np.float32))
    with pytest.raises(specs.SpecError, match=r"observation\.vector: expected shape"):
        specs.validate(spec, value, name="observation")


def test_float_bounds_and_non_finite():
    spec = specs.BoundedArraySpec((2,), np.float32, [-1, 0], [1, 2], "x")
    specs.validate(spec, np.array([[-1, 2]], np.float32))
    with pytest.raises(specs.SpecError, match="non-finite"):
        specs.validate(spec, np.array([[np.nan, 1]], np.float32))
    with pytest.raises(specs.SpecError, match="expected values in"):
        specs.validate(spec, np.array([[0, 2.5]], np.float32))
    s = spec.sample(np.random.default_rng(1), (100,))
    assert s.dtype == np.float32 and (s >= spec.minimum).all() and (s <= spec.maximum).all()


def test_minimum_above_maximum_is_refused():
    with pytest.raises(ValueError, match="exceeds maximum"):
        specs.BoundedArraySpec((), np.int64, 3, 0)


def test_stacked_frames_spec_declares_frames():
    spec = specs.StackedFramesSpec((84, 84, 4), np.uint8, 0, 255)
    assert spec.num_frames == 4
    assert spec.nbytes == 84 * 84 * 4
    with pytest.raises(ValueError, match="num_frames"):
        specs.StackedFramesSpec((84, 84, 4), np.uint8, 0, 255, num_frames=3)
    assert spec != specs.BoundedArraySpec((84, 84, 4), np.uint8, 0, 255)


def test_nest_roundtrip_and_paths():
    Pair = collections.namedtuple("Pair", ["a", "b"])
    tree = {"z": Pair(1, (2, 3)), "a": [4]}
    leaves = nest.flatten(tree)
    assert leaves == [4, 1, 2, 3]  # dict keys sorted
    assert nest.pack_sequence_as(tree, leaves) == tree
    assert [p for p, _ in nest.flatten_with_paths(tree)] == ["a.0", "z.a", "z.b.0", "z.b.1"]
    doubled = nest.map_structure(lambda x: 2 * x, tree)
    assert doubled == {"z": Pair(2, (4, 6)), "a": [8]}
    assert nest.flatten(()) == [] and nest.map_structure(lambda x: x, ()) == ()


def test_a_half_bounded_spec_samples_inside_its_bounds():
    spec = specs.BoundedArraySpec((3,), np.float32, [10.0, -np.inf, -np.inf], [np.inf, -3.0, np.inf])
    x = spec.sample(np.random.default_rng(0), (500,))
    spec.check(x, outer_ndim=1)
    assert (x[:, 0] >= 10).all() and (x[:, 1] <= -3).all() and (x[:, 2] < 0).any() and (x[:, 2] > 0).any()
    huge = specs.BoundedArraySpec((), np.float32, 1e38, 3e38)
    huge.check(huge.sample(np.random.default_rng(0), (10,)), outer_ndim=1)


def test_nan_is_outside_any_bounds():
    for lo, hi in ((0.0, np.inf), (-np.inf, np.inf), (0.0, 1.0)):
        with pytest.raises(specs.SpecError, match="non-finite value"):
            specs.BoundedArraySpec((2,), np.float32, lo, hi).check(np.array([[np.nan, 0.5]], np.float32), 1)


@pytest.mark.parametrize(
    ("dtype", "lo", "hi", "message"),
    [
        (np.int64, 0.5, 3, r"minimum 0.5 is not a value of int64"),
        (np.uint8, -1, 5, r"minimum -1 is not a value of uint8"),
        (np.int32, -np.inf, np.inf, r"minimum -inf is not a value of int32"),
        (np.float32, 0.0, 1e39, r"maximum 1e\+39 is beyond the range of float32"),
        (np.float32, np.nan, 1.0, r"minimum nan holds NaN"),
        (
            np.float32,
            [0.0, 1.0, 2.0],
            5.0,
            r"minimum of shape \(3,\) does not broadcast to the spec's shape \(2,\)",
        ),
    ],
)
def test_bounds_that_the_dtype_would_change_are_refused_by_name(dtype, lo, hi, message):
    with pytest.raises(ValueError, match="^act: " + message):
        specs.BoundedArraySpec((2,), dtype, lo, hi, name="act")


def test_a_stacked_frames_spec_without_axes_is_refused_by_name():
    with pytest.raises(ValueError, match=r"StackedFramesSpec: shape \(\) has no last axis"):
        specs.StackedFramesSpec((), np.uint8, 0, 255, num_frames=4)


def test_nests_of_other_kinds_do_not_pair_by_position():
    Q = collections.namedtuple("Q", ["b", "a"])
    with pytest.raises(
        ValueError, match=r"structure mismatch at '<root>': expected a Q, got keys \['a', 'b'\]"
    ):
        nest.map_structure(lambda x, y: (x, y), Q(b=1, a=2), {"a": "A", "b": "B"})
    R = collections.namedtuple("R", ["a", "b"])
    with pytest.raises(ValueError, match=r"expected fields \('b', 'a'\), got \('a', 'b'\)"):
        nest.map_structure(lambda x, y: (x, y), Q(b=1, a=2), R(a=1, b=2))
    with pytest.raises(ValueError, match=r"structure mismatch at 'a': expected None, got a value"):
        nest.map_structure(lambda x, y: x, {"a": None}, {"a": "garbage"})
    with pytest.raises(ValueError, match=r"pack_sequence_as: the structure holds 3 leaves, got 2"):
        nest.pack_sequence_as({"a": 0, "b": (0, 0)}, [1, 2])
    assert nest.map_structure(lambda x, y: x + y, Q(b=1, a=2), (10, 20)) == Q(
        b=11, a=22
    )  # a tuple still pairs


def test_sample_covers_full_range_uint64_and_complex_specs():
    rng = np.random.default_rng(0)
    top = np.iinfo(np.uint64).max
    full = specs.BoundedArraySpec((2,), np.uint64, 0, top)
    values = specs.sample(full, rng, (200,))
    assert values.dtype == np.uint64 and values.shape == (200, 2)
    assert values.max() > np.iinfo(np.int64).max  # the upper half of the range is reached
    wave = specs.ArraySpec((3,), np.complex64)
    z = specs.sample(wave, rng, (4,))
    assert z.dtype == np.complex64 and z.shape == (4, 3) and np.all(z.imag != 0)
