#[test]
fn scratch() {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let s = mqtt_sim::run::shrink(seed, 120, std::time::Duration::from_secs(60));
    println!("{}", s.to_rust());
    std::env::set_var("MQTT_SIM_TRACE", "1");
    println!("{:?}", mqtt_sim::run::run(&s).err().map(|f| f.message));
}
