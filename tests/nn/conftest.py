"""The layer tests run on every built-in implementation: the loops, the textbook math and the fast engine."""
import pytest

from minicnn.nn.ops import BUILT_IN, use_engine


@pytest.fixture(params=BUILT_IN)
def engine(request):
    """Run the test once per implementation (use with ``pytestmark = pytest.mark.usefixtures("engine")``)."""
    with use_engine(request.param):
        yield request.param
