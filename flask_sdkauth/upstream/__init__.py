"""SIGMA's own ``otp-handler`` service, spoken to from Python (spec §3.11, §11).

Install with ``pip install 'flask-sdkauth[upstream]'``.
"""

from __future__ import annotations

from .authenticator import UpstreamAuthenticator
from .client import OtpHandlerClient
from .sessions import ProxiedSession, ProxiedSessions

__all__ = ["OtpHandlerClient", "ProxiedSession", "ProxiedSessions", "UpstreamAuthenticator"]
