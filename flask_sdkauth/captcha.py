"""Server-side captcha verification with the providers' verify APIs (spec §8)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["CAPTCHA_PROVIDERS", "CaptchaVerifier"]

logger = logging.getLogger("flask_sdkauth")

#: Each provider's public verify API and the form field that carries the token.
CAPTCHA_PROVIDERS = {
    "google": ("https://www.google.com/recaptcha/api/siteverify", "response", "remoteip"),
    "yandex": ("https://smartcaptcha.yandexcloud.net/validate", "token", "ip"),
    "cloudflare": (
        "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        "response",
        "remoteip",
    ),
}


@dataclass(frozen=True)
class CaptchaVerifier:
    """Asks the provider whether a widget's captcha token is genuine."""

    provider: str
    secret: str
    min_score: float = 0.5
    verify_url: str | None = None
    timeout: float = 5.0

    def verify(self, token: str | None, client_ip: str | None) -> bool:
        """``True`` only for a token the provider accepts (and, for Google, with a
        score of at least ``min_score``). A missing token, an error or an
        unreachable provider all count as not confirmed."""
        if not token:
            return False
        default_url, token_field, ip_field = CAPTCHA_PROVIDERS[self.provider]
        form = {"secret": self.secret, token_field: token}
        if client_ip:
            form[ip_field] = client_ip
        try:
            answer = self._post(self.verify_url or default_url, form)
        except (OSError, ValueError) as exc:
            logger.warning("sdkauth: captcha verification failed: %s", exc)
            return False
        return self._accepted(answer)

    def _post(self, url: str, form: dict[str, str]) -> Any:
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def _accepted(self, answer: Any) -> bool:
        if not isinstance(answer, dict):
            return False
        if self.provider == "yandex":
            return answer.get("status") == "ok"
        if answer.get("success") is not True:
            return False
        if self.provider == "google":
            score = answer.get("score")
            return isinstance(score, (int, float)) and score >= self.min_score
        return True
