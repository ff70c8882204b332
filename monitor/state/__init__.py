"""The monitor's state engine: from poll results and events to the state of every device, link and site."""
