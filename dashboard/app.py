"""The Dash app: arrives with the dashboard issue. It will only read `twin.Fleet`'s
public state and call its public methods."""
