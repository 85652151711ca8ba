"""Making the twin a twin of a real fleet: incident-log readers, fitting, trace replay,
backtesting and the calibration report."""
