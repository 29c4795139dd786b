// A typed handle sends only its `In` and receives only its `Out`: the doubler's handle takes
// i32 messages, so an f32 (the same size) does not compile, nor does reading its answer as f32.
use ringkernel_web::KernelHandle;

async fn send_a_float(doubler: KernelHandle<i32, i32>) {
    let _ = doubler.send(1.5f32).await;
}

async fn receive_a_float(doubler: KernelHandle<i32, i32>) {
    let answer: f32 = doubler.receive().await.unwrap();
    let _ = answer;
}

fn main() {
    let _ = (send_a_float, receive_a_float);
}
