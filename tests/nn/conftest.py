"""The layer tests run on both engines: the textbook math of minicnn.nn and the fast engine it calls by default."""
import pytest

from minicnn.nn.engines import ENGINES, use_engine


@pytest.fixture(params=ENGINES)
def engine(request):
    """Run the test once per engine (use with ``pytestmark = pytest.mark.usefixtures("engine")``)."""
    with use_engine(request.param):
        yield request.param
