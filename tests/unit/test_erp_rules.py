"""The operations' rules on fixed instants: periods, month ends, dunning stages,
reminders, and amounts that reconcile to the grosz."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.erp.document import DunningStage
from engine.erp.money import VAT_RATES, document_amounts, line_net, to_grosz, vat_fraction
from engine.erp.rules import (
    add_months,
    due_periods,
    dunning_step,
    next_order_date,
    order_notice_due,
    polish_date,
    reminder_due,
)


def test_monthly_periods_on_day_31_fall_on_each_month_end() -> None:
    periods = due_periods(date(2024, 1, 31), 1, "month", 31, None, after=None,
                          until=date(2024, 5, 1))
    assert periods == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31),
                       date(2024, 4, 30)]


def test_last_day_of_month_follows_leap_years() -> None:
    periods = due_periods(date(2023, 1, 10), 1, "month", "last", None, after=None,
                          until=date(2024, 3, 1))
    assert date(2023, 2, 28) in periods and date(2024, 2, 29) in periods
    assert periods[0] == date(2023, 1, 31)


def test_a_day_of_month_before_the_start_day_begins_next_month() -> None:
    periods = due_periods(date(2026, 1, 15), 1, "month", 1, None, after=None,
                          until=date(2026, 3, 31))
    assert periods == [date(2026, 2, 1), date(2026, 3, 1)]


def test_periods_already_generated_and_after_the_end_are_not_due() -> None:
    periods = due_periods(date(2026, 1, 1), 2, "week", None, date(2026, 2, 12),
                          after=date(2026, 1, 15), until=date(2026, 12, 31))
    assert periods == [date(2026, 1, 29), date(2026, 2, 12)]


def test_a_period_on_the_run_date_is_due() -> None:
    assert due_periods(date(2026, 3, 5), 1, "day", None, None, after=None,
                       until=date(2026, 3, 5)) == [date(2026, 3, 5)]


def test_29_february_start_keeps_its_day_where_months_have_it() -> None:
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 1) == date(2024, 3, 29)
    assert add_months(date(2024, 1, 31), 1, "last") == date(2024, 2, 29)


def test_service_orders_anchor_on_the_start_day_not_on_the_clamped_date() -> None:
    start = date(2026, 1, 31)
    assert next_order_date(start, 1, date(2026, 1, 31)) == date(2026, 2, 28)
    assert next_order_date(start, 1, date(2026, 2, 28)) == date(2026, 3, 31)
    assert next_order_date(start, 3, date(2026, 1, 31)) == date(2026, 4, 30)
    assert next_order_date(date(2024, 2, 29), 12, date(2024, 2, 29)) == date(2025, 2, 28)
    assert next_order_date(date(2024, 2, 29), 12, date(2025, 2, 28)) == date(2026, 2, 28)


STAGES = [
    DunningStage(days=-3, action="email", template="T"),
    DunningStage(days=7, action="sms", template="S"),
    DunningStage(days=14, action="payment_reminder", template="T"),
    DunningStage(days=30, action="sales_block"),
]
DUE = date(2026, 3, 10)


def test_negative_days_act_before_the_due_date() -> None:
    assert dunning_step(STAGES, set(), DUE, date(2026, 3, 6)).execute is None
    assert dunning_step(STAGES, set(), DUE, date(2026, 3, 7)).execute == 1


def test_only_the_most_advanced_due_stage_runs_and_earlier_ones_are_skipped() -> None:
    step = dunning_step(STAGES, set(), DUE, date(2026, 3, 24))
    assert step.execute == 3 and step.skipped == (1, 2)
    step = dunning_step(STAGES, {1}, DUE, date(2026, 3, 24))
    assert step.execute == 3 and step.skipped == (2,)


def test_a_done_stage_is_not_done_again() -> None:
    assert dunning_step(STAGES, {1, 2, 3}, DUE, date(2026, 3, 24)).execute is None
    assert dunning_step(STAGES, {1, 2, 3}, DUE, date(2026, 4, 9)).execute == 4


def test_stage_on_exactly_its_day_is_due() -> None:
    assert dunning_step(STAGES, {1}, DUE, date(2026, 3, 17)).execute == 2
    assert dunning_step(STAGES, {1}, DUE, date(2026, 3, 16)).execute is None


def test_reminder_window_is_from_minutes_before_until_the_start() -> None:
    start = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    assert not reminder_due(start, 30, start - timedelta(minutes=31))
    assert reminder_due(start, 30, start - timedelta(minutes=30))
    assert not reminder_due(start, 30, start)


def test_order_notice_window_ends_on_the_order_date() -> None:
    assert not order_notice_due(date(2026, 5, 10), 3, date(2026, 5, 6))
    assert order_notice_due(date(2026, 5, 10), 3, date(2026, 5, 7))
    assert order_notice_due(date(2026, 5, 10), 0, date(2026, 5, 10))
    assert not order_notice_due(date(2026, 5, 10), 3, date(2026, 5, 11))


def test_the_run_date_is_the_polish_calendar_date() -> None:
    assert polish_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2027, 1, 1)
    assert polish_date(datetime(2026, 7, 31, 21, 59, tzinfo=UTC)) == date(2026, 7, 31)
    assert polish_date(datetime(2026, 7, 31, 22, 0, tzinfo=UTC)) == date(2026, 8, 1)


def test_vat_is_computed_per_rate_on_the_sum_of_net_values() -> None:
    # three lines of 0.03 at 23%: per line 0.0069 each, per rate 0.0207 -> 0.02
    amounts = document_amounts([(Decimal("0.03"), "23")] * 3)
    assert amounts.by_rate["23"].vat == Decimal("0.02")
    assert sum(line.vat for line in amounts.lines) == Decimal("0.02")
    assert amounts.totals.gross == Decimal("0.11")


def test_exempt_and_zero_rates_carry_no_vat() -> None:
    amounts = document_amounts([(Decimal("100.00"), "zw"), (Decimal("50.00"), "0")])
    assert amounts.totals.vat == Decimal("0.00")
    assert amounts.totals.gross == Decimal("150.00")
    assert list(amounts.by_rate) == ["0", "zw"]


def test_half_grosz_rounds_up() -> None:
    assert to_grosz(Decimal("0.005")) == Decimal("0.01")
    assert to_grosz(Decimal("2.675")) == Decimal("2.68")
    assert line_net(Decimal("3"), Decimal("0.335")) == Decimal("1.01")


lines_strategy = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("9999"), places=4),
        st.decimals(min_value=Decimal("0.00"), max_value=Decimal("99999.99"), places=2),
        st.sampled_from(VAT_RATES),
    ),
    min_size=1, max_size=12,
)


@given(lines_strategy)
def test_lines_rates_and_totals_reconcile_to_the_grosz(
    lines: list[tuple[Decimal, Decimal, str]],
) -> None:
    nets = [(line_net(quantity, price), rate) for quantity, price, rate in lines]
    amounts = document_amounts(nets)  # type: ignore[arg-type]
    totals = amounts.totals
    assert sum((line.net for line in amounts.lines), Decimal(0)) == totals.net
    assert sum((line.vat for line in amounts.lines), Decimal(0)) == totals.vat
    assert sum((line.gross for line in amounts.lines), Decimal(0)) == totals.gross
    assert totals.gross == totals.net + totals.vat
    for rate, part in amounts.by_rate.items():
        assert part.vat == to_grosz(part.net * vat_fraction(rate))
        members = [line for line, (_, line_rate) in zip(amounts.lines, nets, strict=True)
                   if line_rate == rate]
        assert sum((line.vat for line in members), Decimal(0)) == part.vat
    for line in amounts.lines:
        assert line.vat.as_tuple().exponent == -2
        assert line.vat >= 0
