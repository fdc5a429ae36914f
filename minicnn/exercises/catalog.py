"""The exercises, in the chapters' order: each one's signature, shapes, the course's example and a hint.

``CASES[name]`` (in ``cases``) gives the inputs a check runs; this module only says what to write.
"""
from typing import NamedTuple


class Exercise(NamedTuple):
    name: str
    params: str          # the signature, fixed: a check elsewhere calls it
    line: str            # one line for the list
    doc: str             # the skeleton's docstring: shapes and what it returns
    hint: str
    mirrors: str         # where the library's own version lives


_COURSE = """The course's example (chapter 002): the 5x5 image
    [[1,2,3,0,1],[0,1,2,3,1],[1,2,1,0,0],[2,1,0,1,2],[0,1,2,3,1]]
with the 3x3 kernel [[1,0,-1],[1,0,-1],[1,0,-1]] gives [[-4,2,4],[0,0,0],[0,0,0]]."""

EXERCISES = {e.name: e for e in [
    Exercise("conv2d_single", "image, kernel", "one image, one kernel: the course's loops (valid, stride 1)",
             "image (H, W), kernel (K, K2) -> out (H-K+1, W-K2+1); out[r, c] = sum(image[r:r+K, c:c+K2] * kernel)\n\n"
             + _COURSE, "two loops over r and c; do not flip the kernel (deep learning's 'convolution' is "
             "cross-correlation)", "minicnn/nn/textbook.py: conv2d_forward (one image, one filter)"),
    Exercise("conv2d_forward", "x, W, b, stride=1, padding=0", "a batch, several channels and filters, stride, padding",
             "x (N, C, H, W), W (F, C, KH, KW), b (F,), padding: zeros on every side -> out (N, F, H_out, W_out),\n"
             "H_out = (H + 2*padding - KH) // stride + 1 (W_out likewise);\n"
             "out[n, f, y, x] = sum over c, i, j of x_padded[n, c, y*stride + i, x*stride + j] * W[f, c, i, j] + b[f]\n\n"
             + _COURSE, "pad with np.pad first; sum over the channels too; add b[f] once per output value",
             "minicnn/nn/textbook.py: conv2d_forward"),
    Exercise("im2col", "x, kernel_size, stride=1, padding=0", "every window as a column, so a convolution is one product",
             "x (N, C, H, W), kernel_size (KH, KW) -> cols (N, C*KH*KW, H_out*W_out);\n"
             "cols[n, c*KH*KW + i*KW + j, y*W_out + x] = x_padded[n, c, y*stride + i, x*stride + j]",
             "loop over the KH*KW offsets (i, j), not over the windows: each offset fills a strided slice",
             "minicnn/nn/im2col.py: im2col"),
    Exercise("conv2d_backward", "dout, x, W, b, stride=1, padding=0", "the gradients of conv2d_forward",
             "dout (N, F, H_out, W_out) -> (dx (N, C, H, W), dW (F, C, KH, KW), db (F,)),\n"
             "the gradients of sum(conv2d_forward(x, W, b, stride, padding) * dout)",
             "dW sums over every image and position; dx adds each window's share back where the window came from, "
             "then drops the padding", "minicnn/nn/textbook.py: conv2d_backward"),
    Exercise("maxpool2d_forward", "x, size=2, stride=2", "the largest value of each window",
             "x (N, C, H, W) -> out (N, C, (H - size)//stride + 1, (W - size)//stride + 1)",
             "a partial window at the edge is dropped", "minicnn/nn/textbook.py: maxpool2d_forward"),
    Exercise("maxpool2d_backward", "dout, x, size=2, stride=2", "each gradient to its window's maximum",
             "dout (N, C, H_out, W_out) -> dx (N, C, H, W); dout[n, c, y, x] goes to the maximum of its window\n"
             "(a tie goes to the first maximum in row-major window order); overlapping windows add up",
             "np.argmax of the flattened window gives the first maximum", "minicnn/nn/textbook.py: maxpool2d_backward"),
    Exercise("relu_forward", "x", "max(x, 0)", "x (any shape) -> out (same shape)", "np.maximum or a mask",
             "minicnn/nn/textbook.py: relu_forward"),
    Exercise("relu_backward", "dout, x", "the gradient of relu_forward",
             "dout, x (same shape) -> dx: dout where x > 0, else 0",
             "the mask comes from the input x, not from dout", "minicnn/nn/textbook.py: relu_backward"),
    Exercise("dense_forward", "x, W, b", "a fully connected layer", "x (N, D), W (D, K), b (K,) -> out = x @ W + b (N, K)",
             "one matrix product", "minicnn/nn/textbook.py: dense_forward"),
    Exercise("dense_backward", "dout, x, W, b", "the gradients of dense_forward",
             "dout (N, K) -> (dx (N, D), dW (D, K), db (K,))", "db sums dout over the batch",
             "minicnn/nn/textbook.py: dense_backward"),
    Exercise("softmax_cross_entropy", "logits, labels", "the loss and its gradient",
             "logits (N, K), labels (N,) ints -> (mean loss over the batch (float), dlogits (N, K))",
             "subtract each row's max before exp; dlogits = (softmax - onehot) / N",
             "minicnn/nn/losses.py: softmax_cross_entropy"),
    Exercise("sgd_momentum_step", "param, grad, velocity, lr, momentum", "one SGD step with momentum (PyTorch's rule)",
             "param, grad, velocity (same shape) -> (new_param, new_velocity):\n"
             "velocity = momentum * velocity + grad;  param = param - lr * velocity",
             "return new arrays; PyTorch's rule, not the one with lr inside the velocity",
             "minicnn/nn/textbook.py: sgd_update"),
]}


def skeleton(name):
    """The text of ``NAME.py`` that ``minicnn exercises start NAME`` writes."""
    e = EXERCISES[name]
    doc = "\n    ".join(e.doc.splitlines())
    return (f'"""Exercise {name}: {e.line}.\n\nCheck it with: minicnn exercises check {name}.py\n"""\n'
            f"import numpy as np\n\n\ndef {name}({e.params}):\n"
            f'    """{doc}\n\n    Hint: {e.hint}.\n    """\n    raise NotImplementedError("write {name}")\n')
