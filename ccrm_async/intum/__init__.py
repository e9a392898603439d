"""intum CRM deals (seed 004): :class:`IntumClient` and :class:`Deal`.

>>> async with IntumClient(account="acme", token="...") as intum:        # doctest: +SKIP
...     deal = await intum.deals.create(
...         Deal(name="CRM rollout", total_amount_net=Decimal("10000.00"),
...              total_amount_gross=Decimal("12300.00"), tax="23", external_id="order-17")
...     )
...     async for deal in intum.deals.list(status_id=1):
...         print(deal.id, deal.name, deal.total_amount_gross)
"""

from .client import DEFAULT_APP_CODE, Deals, IntumClient
from .models import CLOSED_VALUES, DEAL_FIELDS, Deal
from .validation import FILTERS, MONEY_LIMIT, deal_problems, validate_changes, validate_deal

__all__ = [
    "CLOSED_VALUES",
    "DEAL_FIELDS",
    "DEFAULT_APP_CODE",
    "FILTERS",
    "MONEY_LIMIT",
    "Deal",
    "Deals",
    "IntumClient",
    "deal_problems",
    "validate_changes",
    "validate_deal",
]
