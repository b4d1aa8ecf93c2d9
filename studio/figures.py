"""Figures as a person reads them: money in the site's currency ("約12円"), an
answer's length in characters ("1,234文字") and time taken ("1分5秒").

Tokens and US dollars are the staff's figures (the staff usage page, the admin
and a generation's technical details): `usd` and `seconds_exact` are for them.
Costs are held in millionths of a US dollar (the price table's unit) and
converted at settings.STUDIO_CURRENCY_PER_USD only when shown.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# Currencies without minor units in everyday use; the rest show two decimals.
_WHOLE_CURRENCIES = {"JPY", "KRW", "VND", "CLP", "ISK"}


def _currency_format(code: str) -> str:
    """How an amount (already grouped) is written in this currency and language."""
    formats = {
        "JPY": _("¥%(amount)s"),
        "USD": _("$%(amount)s"),
        "EUR": _("€%(amount)s"),
    }
    return formats.get(code) or f"%(amount)s {code}"


def money(usd_micros: int) -> str:
    """An estimated cost (millionths of a US dollar) in the site's currency:
    "約12円" ("about ¥12"), "1円未満" for a fraction of the smallest unit shown,
    "0円" only for nothing at all."""
    code = settings.STUDIO_CURRENCY
    decimals = 0 if code in _WHOLE_CURRENCIES else 2
    unit = Decimal(1).scaleb(-decimals)
    amount = Decimal(usd_micros) / 1_000_000 * Decimal(str(settings.STUDIO_CURRENCY_PER_USD))
    written = _currency_format(code)
    if usd_micros <= 0:
        return written % {"amount": f"{0:.{decimals}f}"}
    if amount < unit:
        return _("under %(money)s") % {"money": written % {"amount": f"{unit:.{decimals}f}"}}
    rounded = amount.quantize(unit, rounding=ROUND_HALF_UP)
    return _("about %(money)s") % {"money": written % {"amount": f"{rounded:,.{decimals}f}"}}


def currency_name() -> str:
    """The site's currency in words, for a chart's title ("円", "US dollars")."""
    names = {"JPY": _("yen"), "USD": _("US dollars"), "EUR": _("euros")}
    return names.get(settings.STUDIO_CURRENCY, settings.STUDIO_CURRENCY)


def currency_amount(usd_micros: int) -> float:
    """An estimated cost as a plain amount of the site's currency (for charts)."""
    return usd_micros / 1_000_000 * settings.STUDIO_CURRENCY_PER_USD


def characters(count: int | None) -> str:
    """An answer's length: "1,234文字" ("1,234 characters")."""
    count = count or 0
    return ngettext("%(count)s character", "%(count)s characters", count) % {"count": f"{count:,}"}


def duration(seconds: float | None) -> str:
    """Time taken, in whole seconds and minutes: "12秒", "1分5秒", "1時間2分"."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return _("under a second")
    whole = int(Decimal(str(seconds)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if whole < 60:
        return ngettext("%(seconds)d second", "%(seconds)d seconds", whole) % {"seconds": whole}
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        if rest == 0:
            return _("%(minutes)d min") % {"minutes": minutes}
        return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": rest}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}


def seconds_exact(seconds: float | None) -> str:
    """A technical time to the hundredth of a second under a second ("0.42秒"),
    to the tenth above it."""
    if seconds is None:
        return "—"
    text = f"{seconds:.2f}" if seconds < 1 else f"{seconds:,.1f}"
    return _("%(seconds)s s") % {"seconds": text}


def sentences(*parts: str) -> str:
    """Sentences one after another as the language writes them: a space between
    them in English, none after a Japanese full stop or colon. Empty parts are
    left out."""
    text = ""
    for part in parts:
        if not part:
            continue
        # Translators: two sentences one after the other (Japanese: no space).
        joined = _("%(before)s %(after)s")
        text = joined % {"before": text, "after": part} if text else part
    return text


def usd(micros: int) -> str:
    """Millionths of a dollar as dollars, for staff: cents once it is a dollar or
    more, otherwise four decimals (one generation often costs a fraction of a cent)."""
    dollars = Decimal(micros) / 1_000_000
    if dollars >= 1:
        return f"${dollars:,.2f}"
    return f"${dollars:.4f}"
