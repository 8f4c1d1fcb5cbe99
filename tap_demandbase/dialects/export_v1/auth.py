"""The export_v1 authentication: the bearer ``access_token`` of a Demandbase user."""

from __future__ import annotations

import typing as t

from tap_demandbase.dialects.common import bearer_auth
from tap_demandbase.errors import ConfigError

if t.TYPE_CHECKING:
    import requests

    from tap_demandbase.dialects.export_v1.settings import ExportV1Options


def token_auth(settings: ExportV1Options) -> requests.auth.AuthBase:
    """Return the authentication of the ``access_token`` setting, or fail saying to set it."""
    token = settings.access_token
    if not token:
        msg = (
            "Setting access_token is required with api_dialect=export_v1: set it (or "
            "TAP_DEMANDBASE_ACCESS_TOKEN) to the bearer token of a Demandbase user with the Data "
            "Export permission."
        )
        raise ConfigError(msg)
    return bearer_auth(token)
