// doubler: answers { value } with { result: value * 2 } (the seeds' first example).
fn handle(msg: Request) -> Response {
    return Response(msg.value * 2);
}
