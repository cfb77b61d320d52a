import numpy as np
import pytest

from hwnas.evaluators import Metrics, Recipe, TrialSpec, evaluation_for
from hwnas.evaluators.tabular import TableError, load_table, lookup
from hwnas.search.pareto import hypervolume
from hwnas.spaces import Evaluated

TEXT = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("cost,expected", [("latency_ms", 0.631877), ("params", 0.864394)])
def test_table_hypervolume_matches_the_reference(cost, expected):
    rows = list(load_table("cifar10").values())
    assert len(rows) == 15625
    c = np.array([r.value(cost) for r in rows], float)
    hv = hypervolume(np.column_stack([[1 - r.value("accuracy") for r in rows], c / c.max()]))
    assert hv == pytest.approx(expected, abs=1e-6)


def test_lookup_and_screen():
    m = lookup("cifar10", TEXT)
    assert 0.85 < m.accuracy < 0.95 and 5 < m.latency_ms < 30 and 100_000 < m.params < 2_000_000
    assert lookup("imagenet", TEXT).accuracy < lookup("cifar100", TEXT).accuracy < m.accuracy
    ev = evaluation_for(Evaluated.TABLE, "cifar10")
    # a text that is no cell of the table is no candidate
    assert ev.screen([TEXT, "|none~0|"]) == [Metrics(latency_ms=m.latency_ms, params=m.params), None]
    assert ev.evaluate(TrialSpec(0, TEXT, "cifar10", Recipe())).metrics == m and ev.input_shape is None
    assert ev.local  # a lookup: evaluated in the asking process


@pytest.mark.parametrize("dataset,cell", [("svhn", TEXT), ("cifar10", "|none~0|")])
def test_unknown_cell_or_dataset(dataset, cell):
    with pytest.raises(TableError):
        lookup(dataset, cell)
