// echo: answers every message with itself.
fn handle(msg: EchoMessage) -> EchoMessage {
    return msg;
}
