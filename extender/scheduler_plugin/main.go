package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// main runs kube-scheduler with FMA's plugins registered: NominatedNode (enable it in a profile's preFilter)
// and PacedBinder (enable it at bind in place of DefaultBinder).
func main() {
	command := app.NewSchedulerCommand(app.WithPlugin(Name, New), app.WithPlugin(PacedBinderName, NewPacedBinder))
	os.Exit(cli.Run(command))
}
