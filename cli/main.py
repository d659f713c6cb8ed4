def main() -> None:
    print("trainer")
