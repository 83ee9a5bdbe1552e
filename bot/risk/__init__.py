"""Risk early warning (issue 15): rights signals as one event stream, a pure detector, alerts."""
