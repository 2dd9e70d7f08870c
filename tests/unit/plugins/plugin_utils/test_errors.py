"""The core's errors (errors.py): one base class the CLI and the adapters catch, and an InputError
that is also a ValueError, so validators written with ``except ValueError`` keep refusing bad input."""
import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils import errors
from ansible_collections.prodgate.deploy.plugins.plugin_utils.input_files import check_path


@pytest.mark.parametrize("cls", [errors.PolicyError, errors.ApprovalError, errors.CalendarError, errors.RegisterError,
                                 errors.ReleaseError, errors.InputError, errors.TrustError])
def test_every_refusal_is_a_prodgate_error_with_its_message(cls):
    with pytest.raises(errors.ProdgateError, match="^policy.yml: the fix$"):
        raise cls("policy.yml: the fix")


def test_bad_input_from_the_core_is_caught_as_a_value_error_too():
    with pytest.raises(ValueError) as caught:
        check_path("keys/alice\0.key", "the key file")
    assert isinstance(caught.value, errors.InputError) and isinstance(caught.value, errors.ProdgateError)
