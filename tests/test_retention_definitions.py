"""The retention definitions (issue 10) as pure functions, checked against hand-computed
examples: every expected value is written by hand with its arithmetic in a comment."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from plugins.retention.definitions import (
    Purchase,
    Rules,
    evaluate,
    lifetime_value,
    lost_on,
    months_between,
    purchase_days,
    stopped_lines,
    usual_interval,
    win_backs,
)
from plugins.retention.service import add_up, money, percent, round_money

RULES = Rules()
D = date(2025, 6, 30)  # D − 90 = 2025-04-01, D − 180 = 2025-01-01, D − 455 = 2024-04-01


def buy(day: str, amount: str = "100", currency: str = "EUR", *lines: str) -> Purchase:
    return Purchase(date.fromisoformat(day), currency, Decimal(amount), frozenset(lines))


def days(*texts: str) -> list[date]:
    return [date.fromisoformat(t) for t in texts]


# --- usual interval -----------------------------------------------------------------------


def test_usual_interval_is_the_median_gap():
    # gaps 10, 20, 40 → the middle one: 20
    assert usual_interval(days("2025-01-01", "2025-01-11", "2025-01-31", "2025-03-12")) == 20


def test_usual_interval_of_an_even_count_is_the_mean_of_the_two_middle_gaps():
    # gaps 10, 20 → (10 + 20) / 2 = 15; gaps 60, 61 → 60.5
    assert usual_interval(days("2025-01-01", "2025-01-11", "2025-01-31")) == 15
    assert usual_interval(days("2024-01-01", "2024-03-01", "2024-05-01")) == Fraction(121, 2)


def test_one_purchase_has_no_interval():
    assert usual_interval(days("2025-01-01")) is None
    assert usual_interval([]) is None


def test_orders_on_the_same_day_are_one_purchase():
    purchases = [buy("2025-03-01", "10"), buy("2025-03-01", "20"), buy("2025-03-01", "30")]
    assert purchase_days(purchases) == days("2025-03-01")
    figures = evaluate(purchases, D, RULES)
    # one purchase: a new client, whatever the number of orders; spend 10 + 20 + 30 = 60
    assert (figures.status, figures.purchases, figures.usual_interval) == ("new", 1, None)
    assert figures.spend_total == {"EUR": Decimal("60")}


# --- lost ---------------------------------------------------------------------------------

A = [buy("2025-01-01", "100"), buy("2025-01-11", "200"), buy("2025-01-31", "300")]


def test_lost_with_the_90_day_floor():
    # interval (10 + 20) / 2 = 15; threshold max(90, 3 × 15 = 45) = 90.
    # D − last = 2025-06-30 − 2025-01-31 = 150 > 90: lost on 2025-01-31 + 90 = 2025-05-01.
    figures = evaluate(A, D, RULES)
    assert figures.status == "lost"
    assert figures.lost_on == date(2025, 5, 1)
    # revenue before leaving: orders in (2024-01-31, 2025-01-31]: 100 + 200 + 300 = 600
    assert figures.revenue_before == {"EUR": Decimal("600")}
    # months first → last: 30 days ÷ 30.4375 < 1, so 1; 600 / 1 × 24 = 14,400.00
    assert money(figures.lifetime_value_lost) == {"EUR": "14400.00"}


def test_lost_is_more_than_the_threshold_not_equal_to_it():
    last = date(2025, 1, 31)
    # D − last = 90 is not more than 90; 91 is.
    assert lost_on(purchase_days(A), date(2025, 5, 1), RULES) is None
    assert lost_on(purchase_days(A), date(2025, 5, 2), RULES) == date(2025, 5, 1)
    assert (date(2025, 5, 2) - last).days == 91


B = [buy("2024-01-01", "1000", "USD"), buy("2024-03-01", "1000", "USD")]
B.append(buy("2024-05-01", "1000", "USD"))


def test_lost_with_three_intervals_rounded_up():
    # gaps 60 (Jan 1 → Mar 1, 2024 is a leap year) and 61 → interval 60.5;
    # threshold max(90, 3 × 60.5 = 181.5) = 181.5: lost once D − last ≥ 182;
    # lost on 2024-05-01 + ceil(181.5) = 182 days = 2024-10-30.
    assert evaluate(B, date(2024, 10, 29), RULES).status == "at_risk"  # 181 days ≤ 181.5
    figures = evaluate(B, date(2024, 10, 30), RULES)  # 182 days > 181.5
    assert (figures.status, figures.lost_on) == ("lost", date(2024, 10, 30))
    # spend 3,000 USD over 121 days (Jan 31 + Feb 29 + Mar 31 + Apr 30);
    # 3000 ÷ (121 ÷ 30.4375) × 24 = 3000 × 30.4375 × 24 ÷ 121 = 2,191,500 ÷ 121
    # = 18,111.570… → 18,111.57
    assert money(figures.lifetime_value_lost) == {"USD": "18111.57"}
    assert figures.revenue_before == {"USD": Decimal("3000")}


def test_the_guides_example_1000_a_month_for_20_years_is_240000():
    # 487 days = 16 × 30.4375: 16 months; 16,000 spent → 1,000 a month; × 240 months = 240,000
    rules = Rules(lifetime_months=Decimal(240))
    spend = {"EUR": Decimal(16000)}
    assert months_between(date(2024, 1, 1), date(2025, 5, 2)) == 16
    assert money(lifetime_value(spend, date(2024, 1, 1), date(2025, 5, 2), rules)) == {
        "EUR": "240000.00"
    }
    # less than a month between first and last order counts as one month
    assert months_between(date(2025, 1, 1), date(2025, 1, 1)) == 1


# --- at risk, regular ---------------------------------------------------------------------

R = [buy("2025-01-01"), buy("2025-01-11"), buy("2025-01-21")]  # gaps 10, 10 → interval 10


def test_at_risk_after_more_than_two_intervals():
    # D − last = 21 > 2 × 10 = 20: at risk; 20 is not more than 20: regular.
    assert evaluate(R, date(2025, 2, 11), RULES).status == "at_risk"
    assert evaluate(R, date(2025, 2, 10), RULES).status == "regular"


def test_orders_after_the_reference_date_do_not_count():
    later = [*R, buy("2025-02-05")]
    figures = evaluate(later, date(2025, 2, 1), RULES)
    assert figures.purchases == 3 and figures.last_day == date(2025, 1, 21)


# --- drying up ----------------------------------------------------------------------------

# Every 20 days: interval 20, so never at risk below 40 days since the last purchase.
C_PREVIOUS = [buy("2025-02-01", "100"), buy("2025-02-21", "100"), buy("2025-03-13", "100")]


def recent(amount: str) -> list[Purchase]:
    return [buy(day, amount) for day in ("2025-04-02", "2025-04-22", "2025-05-12", "2025-06-01")]


def test_drying_up_when_the_average_order_fell_by_a_quarter_or_more():
    # previous 90 days (2025-01-01, 2025-04-01]: 3 purchases of 100 → AOV 100;
    # last 90 days (2025-04-01, 2025-06-30]: 4 of 60 → AOV 60; (60 − 100) ÷ 100 × 100 = −40 %.
    figures = evaluate(C_PREVIOUS + recent("60"), D, RULES)
    assert figures.status == "drying_up" and figures.signals == ["aov_drop"]
    assert figures.aov_last == {"EUR": 60} and figures.aov_prev == {"EUR": 100}
    assert {c: percent(v) for c, v in figures.aov_change_percent.items()} == {
        "EUR": Decimal("-40.00")
    }


def test_exactly_25_percent_down_counts_and_24_does_not():
    # 75 vs 100: −25 % (at least 25 % below); 76 vs 100: −24 %.
    assert evaluate(C_PREVIOUS + recent("75"), D, RULES).signals == ["aov_drop"]
    figures = evaluate(C_PREVIOUS + recent("76"), D, RULES)
    assert (figures.status, figures.signals) == ("regular", [])


def test_same_day_orders_are_one_purchase_for_the_average():
    # 2025-06-01: two orders of 30 = one purchase of 60; last 90 days: 60 × 4 purchases → 60.
    purchases = [*C_PREVIOUS, *recent("60")[:3], buy("2025-06-01", "30"), buy("2025-06-01", "30")]
    assert evaluate(purchases, D, RULES).aov_last == {"EUR": 60}


def test_no_aov_signal_without_orders_in_both_periods():
    only_recent = [buy("2025-04-02", "100"), buy("2025-04-22", "10"), buy("2025-05-12", "10")]
    figures = evaluate(only_recent, date(2025, 5, 20), RULES)
    assert figures.aov_prev == {} and figures.signals == []


def test_a_product_line_no_longer_bought():
    # (D − 455, D − 90] = (2024-04-01, 2025-04-01]: Coffee in 3 purchases, Tea in 3;
    # (D − 90, D]: Tea only. Coffee stopped; Cake (in 2 purchases only) does not count.
    history = [
        buy("2025-01-10", "50", "EUR", "Coffee", "Tea", "Cake"),
        buy("2025-02-10", "50", "EUR", "Coffee", "Tea", "Cake"),
        buy("2025-03-10", "50", "EUR", "Coffee", "Tea"),
        buy("2025-04-10", "50", "EUR", "Tea"),
        buy("2025-05-10", "50", "EUR", "Tea"),
        buy("2025-06-10", "50", "EUR", "Tea"),
    ]
    figures = evaluate(history, D, RULES)
    assert figures.status == "drying_up"
    assert figures.signals == ["line_stopped"] and figures.stopped_lines == ["Coffee"]


def test_a_line_bought_before_the_history_window_does_not_count():
    # 2024-03-10 is before D − 455 = 2024-04-01: Coffee has only 2 purchases in the window.
    history = [
        buy("2024-03-10", "50", "EUR", "Coffee"),
        buy("2025-02-10", "50", "EUR", "Coffee"),
        buy("2025-03-10", "50", "EUR", "Coffee"),
        buy("2025-05-10", "50", "EUR", "Tea"),
    ]
    assert stopped_lines(history, D, RULES) == []


def test_no_line_signal_when_nothing_else_was_bought_recently():
    history = [buy(d, "50", "EUR", "Coffee") for d in ("2025-01-10", "2025-02-10", "2025-03-10")]
    history.append(buy("2025-05-10", "50"))  # an order without lines
    assert stopped_lines(history, D, RULES) == []


def test_a_drying_up_client_lists_every_signal():
    history = [
        buy("2025-01-10", "100", "EUR", "Coffee", "Tea"),
        buy("2025-02-10", "100", "EUR", "Coffee", "Tea"),
        buy("2025-03-10", "100", "EUR", "Coffee", "Tea"),
        buy("2025-04-10", "50", "EUR", "Tea"),
        buy("2025-05-10", "50", "EUR", "Tea"),
        buy("2025-06-10", "50", "EUR", "Tea"),
    ]
    # AOV: previous 90 days: 2025-02-10, 2025-03-10 → 100; last: 50 → −50 %
    assert evaluate(history, D, RULES).signals == ["aov_drop", "line_stopped"]


# --- won back -----------------------------------------------------------------------------

W = [buy("2024-06-01", "50"), buy("2024-06-11", "50"), buy("2024-06-21", "50")]
W.append(buy("2024-11-01", "50"))  # 133 days after 2024-06-21 > max(90, 3 × 10)


def test_won_back_after_a_gap_longer_than_the_lost_threshold():
    assert win_backs(purchase_days(W), RULES) == [date(2024, 11, 1)]
    figures = evaluate(W, date(2024, 11, 10), RULES)
    # gaps 10, 10, 133 → interval 10; 9 days since the last: not at risk; AOV: previous 90
    # days (2024-05-14, 2024-08-12]: 50; last: 50 → 0 %: no signal; so won back.
    assert (figures.status, figures.won_back_on) == ("won_back", date(2024, 11, 1))


def test_won_back_counts_whatever_the_status_now():
    # At D: interval 10, threshold 90, D − 2024-11-01 = 241 > 90: lost again on
    # 2024-11-01 + 90 = 2025-01-30; the win-back order is still in (2024-06-30, 2025-06-30].
    figures = evaluate(W, D, RULES)
    assert (figures.status, figures.lost_on, figures.won_back_on) == (
        "lost",
        date(2025, 1, 30),
        date(2024, 11, 1),
    )
    # revenue before leaving: (2023-11-02, 2024-11-01]: 4 × 50 = 200;
    # 153 days first → last; 200 × 30.4375 × 24 ÷ 153 = 146,100 ÷ 153 = 954.901… → 954.90
    assert figures.revenue_before == {"EUR": Decimal("200")}
    assert money(figures.lifetime_value_lost) == {"EUR": "954.90"}


def test_no_win_back_without_three_purchases_before_the_gap():
    two_then_gap = [buy("2024-01-01"), buy("2024-01-11"), buy("2024-09-01")]
    assert win_backs(purchase_days(two_then_gap), RULES) == []


def test_a_win_back_older_than_a_year_is_not_counted():
    figures = evaluate(W, date(2025, 11, 2), RULES)  # 2024-11-01 is 366 days before
    assert figures.won_back_on is None


# --- currencies and money -----------------------------------------------------------------


def test_currencies_are_never_added_together():
    mixed = [buy("2025-01-01", "100", "EUR"), buy("2025-01-11", "1000", "USD")]
    mixed.append(buy("2025-01-31", "300", "EUR"))
    figures = evaluate(mixed, D, RULES)
    # lost (as A); spend EUR 100 + 300 = 400, USD 1,000; LTV per currency: × 24 (1 month)
    assert figures.spend_total == {"EUR": Decimal("400"), "USD": Decimal("1000")}
    assert money(figures.revenue_before) == {"EUR": "400.00", "USD": "1000.00"}
    assert money(figures.lifetime_value_lost) == {"EUR": "9600.00", "USD": "24000.00"}


def test_money_is_rounded_half_up_once_at_the_end():
    # two clients of 0.005 each: exact sum 0.01; rounding each first would give 0.02
    values = [{"EUR": Fraction(1, 200)}, {"EUR": Fraction(1, 200)}]
    assert money(add_up(values)) == {"EUR": "0.01"}
    assert round_money(Fraction(1, 200), "EUR") == Decimal("0.01")  # half up
    assert round_money(Fraction(-1, 200), "EUR") == Decimal("-0.01")
    assert round_money(Fraction(5, 10), "JPY") == Decimal("1")
    assert round_money(Fraction(12345, 10000), "KWD") == Decimal("1.235")


@pytest.mark.parametrize("purchases", [[], [buy("2025-07-01")]])
def test_no_orders_up_to_the_date_is_a_new_client_with_nothing(purchases):
    figures = evaluate(purchases, D, RULES)
    assert (figures.status, figures.purchases, figures.spend_total) == ("new", 0, {})
