"""Every app's domain errors share a neutral root; MemberError stays members' own."""

import pytest

from community.services import ForumError
from members.errors import DomainError, MemberError
from points.services import PointsError
from recommend.experiments import ExperimentError


@pytest.mark.parametrize("error", [MemberError, ForumError, PointsError, ExperimentError])
def test_domain_errors_derive_from_domain_error(error):
    assert issubclass(error, DomainError)


@pytest.mark.parametrize("error", [ForumError, PointsError, ExperimentError])
def test_other_apps_errors_are_not_member_errors(error):
    assert not issubclass(error, MemberError)
