import pytest
from django_scopes import scope


@pytest.fixture
def in_scope(workspace):
    with scope(workspace=workspace):
        yield workspace
