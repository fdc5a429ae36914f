import io
import re

import numpy as np
import pytest

from minicnn.edges import explain
from minicnn.nn.reference import conv2d_naive

IMAGE = [[1, 2, 3, 0, 1],
         [0, 1, 2, 3, 1],
         [1, 2, 1, 0, 0],
         [2, 1, 0, 1, 2],
         [0, 1, 2, 3, 1]]


def final_map(stdout):
    """The rows printed under 'feature map:' (the final one, not the 'so far' ones)."""
    lines = stdout.split("\n")
    start = lines.index("feature map:") + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append([float(v) for v in line.split()])
    return np.array(rows)


def test_small_example_prints_the_hand_computed_map(capsys):
    # kernel [[1, 0, -1]] * 3: out[i, j] = sum over the 3 rows r of (x[r, j] - x[r, j + 2])
    # row differences x[r, j] - x[r, j + 2] for j = 0, 1, 2:
    #   r0: 1-3=-2, 2-0=2, 3-1=2     r1: 0-2=-2, 1-3=-2, 2-1=1    r2: 1-1=0, 2-0=2, 1-0=1
    #   r3: 2-0=2, 1-1=0, 0-2=-2     r4: 0-2=-2, 1-3=-2, 2-1=1
    # out[0] = r0+r1+r2 = [-4, 2, 4]; out[1] = r1+r2+r3 = [0, 0, 0]; out[2] = r2+r3+r4 = [0, 0, 0]
    expected = np.array([[-4, 2, 4], [0, 0, 0], [0, 0, 0]])
    assert explain.main([]) == 0
    out = capsys.readouterr().out
    np.testing.assert_array_equal(final_map(out), expected)
    assert "H_out = (H + 2*padding - KH) // stride + 1 = (5 + 2*0 - 3) // 1 + 1 = 3" in out
    assert "step 1 of 9" in out and "step 9 of 9" in out and "step 10" not in out
    assert "sum = 1 + 0 + (-3) + 0 + 0 + (-2) + 1 + 0 + (-1) = -4" in out  # first window, by hand
    assert "[1][2][3] 0  1" in out  # the first window marked on the image
    assert "yes, they agree" in out
    assert "614,656" in out and "9 weights" in out
    assert "\x1b[" not in out  # no ANSI codes when not animating


def test_step_example_with_sobel_x(capsys):
    assert explain.main(["--example", "step"]) == 0
    out = capsys.readouterr().out
    # every window straddling the 0 -> 9 step sees (1 + 2 + 1) * 9 = 36, the flat ones 0
    np.testing.assert_array_equal(final_map(out), np.tile([0, 36, 36, 0, 0], (5, 1)))
    assert "kernel: sobel_x" in out and "step 25 of 25" in out


@pytest.mark.parametrize("stride,padding", [(2, 1), (1, 2), (3, 0)])
def test_stride_and_padding_match_the_reference_loops(capsys, stride, padding):
    assert explain.main(["--kernel", "sobel_y", "--stride", str(stride), "--padding", str(padding)]) == 0
    out = capsys.readouterr().out
    from minicnn.edges.filters import get_kernel
    x = np.array(IMAGE, dtype=np.float64)[None, None]
    expected = conv2d_naive(x, get_kernel("sobel_y", np.float64)[None, None], np.zeros(1), stride, padding)[0, 0]
    np.testing.assert_array_equal(final_map(out), expected)
    H_out = (5 + 2 * padding - 3) // stride + 1
    assert f"(5 + 2*{padding} - 3) // {stride} + 1 = {H_out}" in out
    assert "yes, they agree" in out


def test_custom_image_and_literal_kernel(capsys):
    assert explain.main(["--image", "0,0,1,1;0,0,1,1", "--kernel=-1,1"]) == 0
    np.testing.assert_array_equal(final_map(capsys.readouterr().out), [[0, 1, 0], [0, 1, 0]])


def test_animate_redraws_in_place():
    buffer = io.StringIO()
    fmap = explain.walk_through(np.array(IMAGE, float), np.ones((3, 3)), out=buffer, animate=True, delay=0)
    assert buffer.getvalue().count(explain.CLEAR) == 9
    assert fmap[0, 0] == sum(sum(row[:3]) for row in IMAGE[:3])


def test_animate_without_terminal_prints_every_step(capsys):
    assert explain.main(["--animate", "--delay", "0"]) == 0
    captured = capsys.readouterr()
    assert "step 9 of 9" in captured.out and explain.CLEAR not in captured.out
    assert "needs a terminal" in captured.err


def test_bad_input(capsys):
    assert explain.main(["--kernel", "sobel_z"]) == 2
    assert "unknown kernel 'sobel_z'" in capsys.readouterr().err
    assert explain.main(["--image", "1,2;3"]) == 2
    assert "same length" in capsys.readouterr().err
    assert explain.main(["--kernel", "1,x"]) == 2
    assert "must be numbers" in capsys.readouterr().err
    for option, value, expected in (("--stride", "0", "a whole number of at least 1"),
                                    ("--padding", "100000", "a whole number from 0 to 100"),
                                    ("--delay", "-1", "a number in [0, 60]")):
        with pytest.raises(SystemExit) as info:      # argparse: usage and one error line, exit 2
            explain.main([option, value])
        assert info.value.code == 2 and f"argument {option}: expected {expected}" in capsys.readouterr().err
    assert explain.main(["--image", "1,2;3,4"]) == 2  # 3x3 kernel larger than a 2x2 image
    assert "does not fit" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--kernel=1,inf"], r"kernel must hold finite numbers, got '1,inf'"),
    (["--kernel", "nan,1;1,1"], r"kernel must hold finite numbers"),
    (["--image", "1,2;inf,4", "--kernel", "1"], r"image must hold finite numbers"),
    (["--kernel", "inf"], r"unknown kernel 'inf'"),
])
def test_non_finite_numbers_are_one_line_and_exit_2(capsys, args, message):
    assert explain.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn explain: error: ") and err.count("\n") == 1 and re.search(message, err), err


def test_large_walk_through_shows_the_first_steps_and_says_what_was_skipped(capsys):
    # --padding 100 on a 1x1 image floods 40,401 windows; padding 12 gives 25 x 25 = 625, the same path, faster.
    assert explain.main(["--padding", "12", "--image", "1", "--kernel", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nstep ") == explain.MAX_STEPS
    assert f"... {625 - explain.MAX_STEPS} more steps not shown ({explain.MAX_STEPS} of 625 shown); " \
           "--all shows every one" in out
    assert "Conv2D computes the same map: yes" in out


def test_all_shows_every_step(capsys):
    assert explain.main(["--padding", "4", "--image", "1", "--kernel", "1", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nstep ") == 81 and "step 81 of 81" in out and "not shown" not in out


def test_backward_prints_the_sums_of_conv2d_backward(capsys):
    from minicnn.edges import backprop

    assert explain.main(["--backward"]) == 0
    out = capsys.readouterr().out
    b = backprop.backward(explain.EXAMPLES["small"]["image"], [[1, 0, -1]] * 3)
    assert "L = 22" in out
    for cell in backprop.dW_cells(b):
        line = next(x for x in out.splitlines() if x.strip().startswith(f"dL/dW[{cell.row}, {cell.col}] ="))
        written = float(line.split(" = ")[-1].split()[0])
        assert written == pytest.approx(b.dW[cell.row, cell.col], abs=1e-4), line
        assert f"(Conv2D.backward: {explain._four(b.dW[cell.row, cell.col])})" in line
    assert sum(1 for x in out.splitlines() if x.strip().startswith("dL/dx[")) == 25
    assert "dL/dW[0, 0] = (-2.2222) + 0.8889 + 6 + 0 + 0.4444 + 0.4444 + 0.4444 + 0 + (-0.4444) = 5.5556" in out
    assert "the sums equal Conv2D.backward's: yes" in out


def test_backward_refuses_what_it_cannot_walk_through(capsys):
    assert explain.main(["--backward", "--stride", "2"]) == 2
    assert "stride 1 and padding 0 only" in capsys.readouterr().err
    assert explain.main(["--backward", "--kernel", "1,2;3,4"]) == 2
    assert "must be 3x3" in capsys.readouterr().err
