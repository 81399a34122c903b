from decimal import Decimal

import numpy as np
import pytest

from crm.csv_export import csv_safe


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1 555", "'+1 555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("Linen Shirt", "Linen Shirt"),
        (None, ""),
        (-12.5, -12.5),
        (Decimal("-3.10"), Decimal("-3.10")),
        (np.int64(-4), np.int64(-4)),
        (True, "True"),
    ],
)
def test_cells_that_would_run_as_formulas_are_quoted_and_numbers_stay_numbers(value, cell):
    assert csv_safe(value) == cell
