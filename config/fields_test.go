package config

import (
	"reflect"
	"testing"
	"time"
)

type fieldsShared struct {
	Retries int `yaml:"retries" doc:"tries"`
}

type fieldsTarget struct {
	Path   string        `yaml:"path" required:"true" carpipe:"path" doc:"the folder"`
	Secret string        `yaml:"password" secret:"true"`
	Wait   time.Duration `yaml:"wait"`
	Ratio  float64
	On     bool     `yaml:"on"`
	Tags   []string `yaml:"tags"`
	TLS    *struct {
		CA string `yaml:"ca" required:"true"`
	} `yaml:"tls"`
	Labels       map[string]string `yaml:"labels"`
	Ignored      string            `yaml:"-"`
	hidden       string
	fieldsShared `yaml:",inline"`
}

func TestFields(t *testing.T) {
	v := &fieldsTarget{Wait: 10 * time.Second, On: true, fieldsShared: fieldsShared{Retries: 3}}
	v.hidden = "x"
	got := Fields(v)
	str := Field{Key: "tags", Type: "list", Item: &Field{Type: "string"}}
	want := []Field{
		{Key: "path", Type: "string", Required: true, Path: true, Doc: "the folder"},
		{Key: "password", Type: "string", Secret: true},
		{Key: "wait", Type: "duration", Default: "10s"},
		{Key: "ratio", Type: "number"},
		{Key: "on", Type: "boolean", Default: true},
		str,
		{Key: "tls", Type: "mapping", Fields: []Field{{Key: "ca", Type: "string", Required: true}}},
		{Key: "labels", Type: "mapping"},
		{Key: "retries", Type: "integer", Default: 3, Doc: "tries"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields\n%+v\nwant\n%+v", got, want)
	}
	if Fields(3) != nil {
		t.Error("Fields of a non-struct")
	}
}
