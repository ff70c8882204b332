"""Operations reporting: availability from the state history, incidents from the alarms, the monthly report."""

from dashboards.reporting.availability import Availability, Period, month_period, time_in_states
from dashboards.reporting.incidents import IncidentSummary, summarise
from dashboards.reporting.monthly import MonthlyReport, monthly_report

__all__ = ["Availability", "IncidentSummary", "MonthlyReport", "Period", "month_period", "monthly_report",
           "summarise", "time_in_states"]
